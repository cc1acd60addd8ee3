"""One-GPU time of the experiments beyond the paper (config `experiments:`) at paper scale, estimated.

The jobs the experiments add are counted by two Snakemake dry runs of config/paper.yaml (as it is,
and with an `experiments:` block on top); each added job is priced with the per-stage rates
benchmarks/paper_scale.py measured on a GPU (benchmarks/results/paper_scale_<device>.json) and the
SAE loop's split between the fixed part (LM forward, shuffle, logging) and the SAE step
(benchmarks/results/sae_loop_<device>.json), which is what grows with the dictionary's width:

    sae / sae_width(_seed)  15M tokens at the measured loop rate, its step share scaled by width / 16
    sae_eval, *_acts        the measured rates, scaled the same way
    correlate, width_corr   the measured rate per edge on the GPU machine's CPU cores (cpu_eval has no GPU in
                            paper.yaml; cost follows co-active pairs, i.e. L0, not width): CPU-node minutes
    null                    permutations x correlate
    merge_sweep, merge      the measured sweep and merge; evaluate: 4 corpora x lm.eval_tokens
    merge_path              2 parents x every t of the sweep x merge_path_tokens at the acts rate
    every GPU job           the measured start-up (python, imports, first device op)

Light jobs are not counted. The total is GPU minutes plus CPU-node minutes, as if all ran one
after another on one node: an upper bound on the extra wall time. Writes benchmarks/results/experiments_estimate.json.

    .venv/bin/python benchmarks/experiments_estimate.py [--device h200] [--widths 2 4 8 32]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from featureflow.plan import load_plan  # noqa: E402

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def job_counts(configs: list[Path]) -> dict[str, int]:
    """Jobs per rule of a dry run of the workflow on `configs` (nothing is built or downloaded)."""
    with tempfile.TemporaryDirectory() as wd:
        cmd = [sys.executable, "-m", "snakemake", "-n", "-s", str(REPO / "Snakefile"), "-d", wd, "--configfile",
               *map(str, configs), "--replace-workflow-config"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=REPO).stdout
    stats = out.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def width_scale(width: int, own: int, step_share: float) -> float:
    """Cost of an SAE job at `width` relative to the measured one at `own`: only the step grows."""
    return (1 - step_share) + step_share * width / own


def estimate(device: str, widths: list[int], methods: list[str]) -> dict[str, Any]:
    """Added jobs per rule, their GPU minutes, and the total, for the experiments on config/paper.yaml."""
    measured = json.loads((REPO / f"benchmarks/results/paper_scale_{device}.json").read_text())
    loop = json.loads((REPO / f"benchmarks/results/sae_loop_{device}.json").read_text())["compiled"]
    cpu_edge = json.loads((REPO / f"benchmarks/results/correlation_{device}.json").read_text())["ours"]["wall_s"]
    stage = {s["stage"]: s for s in measured["stages"]}
    step_share = loop["loop_tok_s"] / loop["step_alone_tok_s"]  # share of the loop's time spent in the SAE step
    experiments = {"merge_methods": methods, "merge_path": True, "widths": widths}
    with tempfile.TemporaryDirectory() as tmp:
        overlay = Path(tmp) / "experiments.yaml"
        overlay.write_text(yaml.safe_dump({"experiments": experiments}))
        base, added = job_counts([REPO / "config/paper.yaml"]), job_counts([REPO / "config/paper.yaml", overlay])
    extra = {rule: n - base.get(rule, 0) for rule, n in added.items() if n > base.get(rule, 0) and rule != "all"}

    cfg = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    plan = load_plan({**cfg, "experiments": experiments}, SCHEMA, REPO)
    own, models = plan.sae.expansion_factor, len(plan.lineage.order) - len(methods)
    per_sae = stage["SAE training"]["minutes"] * 60 / models  # seconds per SAE at the lineage's width
    per_eval = stage["SAE evaluation"]["minutes"] * 60 / models
    per_acts = stage["feature activations"]["minutes"] * 60 / models
    mean_width = sum(width_scale(w, own, step_share) for w in plan.trained_widths()) / max(len(plan.trained_widths()), 1)
    t_points = 26  # the paper sweep's points (grid 0.1 + refinement), as paper_scale measured them
    seconds = {
        "sae": per_sae, "sae_width": per_sae * mean_width, "sae_eval": per_eval, "sae_width_eval": per_eval * mean_width,
        "feature_acts": per_acts, "width_acts": per_acts * mean_width,
        "sae_width_seed": per_sae * mean_width, "width_seed_acts": per_acts * mean_width, "merge_sweep": stage["merge sweep"]["minutes"] * 60,
        "merge": stage["merged model"]["minutes"] * 60, "evaluate": stage["LM evaluation"]["minutes"] * 60 / 4,
        "merge_path": 2 * t_points * int(plan.config["experiments"]["merge_path_tokens"]) / stage["feature activations"]["rate"],
    }
    cpu_seconds = {"correlate": cpu_edge, "width_corr": cpu_edge, "width_seed_corr": cpu_edge, "null": cpu_edge * plan.null_permutations}
    job_class = rules_by_job_class()
    startup = stage["job start-up"]["rate"]
    rows = {}
    for rule, n in sorted(extra.items()):
        cls = job_class[rule]
        gpu = plan.job_class(cls).gpus > 0
        node = "gpu" if gpu else "cpu" if cls == "cpu_eval" else "light"
        work = (seconds if gpu else cpu_seconds).get(rule, 0.0) + (startup if node != "light" else 0.0)
        rows[rule] = {"jobs": n, "class": cls, "node": node, "minutes": round(n * work / 60, 2) if node != "light" else 0.0}
    gpu_total = round(sum(r["minutes"] for r in rows.values() if r["node"] == "gpu"), 1)
    cpu_total = round(sum(r["minutes"] for r in rows.values() if r["node"] == "cpu"), 1)
    total = round(gpu_total + cpu_total, 1)
    return {"device": measured["device"], "experiments": experiments, "own_width": own, "sae_step_share": round(step_share, 3),
            "added_jobs": sum(extra.values()), "rules": rows, "gpu_minutes": gpu_total, "cpu_node_minutes": cpu_total,
            "total_minutes": total, "target_minutes": 60,
            "within_target": total < 60,
            "note": "estimated from measured rates (paper_scale and sae_loop on this device), not a measured run; "
                    "SLURM queueing not included; light jobs run on CPU nodes"}


def rules_by_job_class() -> dict[str, str]:
    """Rule -> its job class, from the schema's description of each class ("...: rule, rule, rule.")."""
    classes = yaml.safe_load(SCHEMA.read_text())["properties"]["resources"]["properties"]
    return {r.strip(" ."): name for name, node in classes.items()
            for r in re.sub(r"\([^)]*\)", "", node["description"].split(":", 1)[1]).split(",")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="h200", help="which measured rates: benchmarks/results/paper_scale_<device>.json")
    ap.add_argument("--widths", type=int, nargs="+", default=[2, 4, 8, 32])
    ap.add_argument("--methods", nargs="+", default=["linear", "ties"])
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/experiments_estimate.json"))
    a = ap.parse_args()
    result = estimate(a.device, a.widths, a.methods)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    for rule, r in result["rules"].items():
        print(f"{rule:18} {r['jobs']:4d} jobs  {r['minutes']:7.2f} min  ({r['class']}, {r['node']} node)")
    print(f"total {result['total_minutes']} min: {result['gpu_minutes']} on one {result['device']} + "
          f"{result['cpu_node_minutes']} on CPU cores (target < 60)")


if __name__ == "__main__":
    main()
