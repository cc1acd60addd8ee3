"""The paper's shapes end to end on this machine's CPUs: config/paper-shapes.yaml through the whole workflow.

    python benchmarks/paper_shapes.py                   # tiny budgets, the whole lineage
    python benchmarks/paper_shapes.py --budget suite    # tiny budgets, base and one fine-tune (the test suite's run)
    python benchmarks/paper_shapes.py --budget larger   # 30k SAE tokens, 24k activation positions

Cuts local shards (JSONL, parquet) from the demo texts, runs Snakemake to the report in a scratch
folder, and writes every job's time and peak memory (Snakemake's benchmark files), the wall time and
the SAEs' metrics to benchmarks/results/paper_shapes_cpu_<budget>.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "paper-shapes.yaml"
RECORD_SEP_LINE = "\n\x1e\n"
# corpus -> (demo text, shard format, text column)
SHARDS = {"english": ("english", "jsonl", "text"), "python": ("python", "parquet", "content"),
          "lua": ("lua", "jsonl", "content"), "stories": ("stories", "jsonl", "text")}
BUDGETS: dict[str, dict[str, Any]] = {
    "tiny": {},
    # the test suite's: one edge at the paper's shapes is what it checks (merges are shape-agnostic and
    # the micro run merges); half the jobs, half the sample and evaluation tokens (the correlation, the
    # browser and the evaluations scale with them; the shapes do not), half the training steps (2 of
    # the base LM, 4 of each SAE: ~3 s and ~1.4 s each here) and two contexts per browser page (the
    # browser formats every context of 16,384 features twice over), keep the suite within its budget;
    # HTML figures only (a PNG costs the same at any shape, and the micro run draws them)
    "suite": {"figures": {"png": False},
              "models": {"babypython": {"train_on": ["english", "python"], "mix": "even"},
                         "lua": {"parent": "babypython", "train_on": ["lua"]}},
              "acts": {"tokens": 480}, "lm": {"eval_tokens": 512, "scratch": {"tokens": 2048}},
              "sae": {"eval_tokens": 240, "tokens": 768, "buffer_tokens": 768, "dead_window_tokens": 768},
              "analysis": {"browser_contexts": 2}},
    "larger": {"sae": {"tokens": 30000, "buffer_tokens": 30000, "dead_window_tokens": 30000},
               "acts": {"tokens": 24000}},
}


def write_shards(workdir: Path, n_shards: int = 3) -> dict[str, list[Path]]:
    """Documents of the demo texts dealt round-robin into `n_shards` shards per corpus, as a hub dataset has them."""
    out: dict[str, list[Path]] = {}
    for corpus, (demo, fmt, column) in SHARDS.items():
        docs = (REPO / f"data/demo/{demo}/{demo}.txt").read_text(encoding="utf-8").split(RECORD_SEP_LINE)
        folder = workdir / "shards" / corpus
        folder.mkdir(parents=True, exist_ok=True)
        out[corpus] = []
        for i in range(n_shards):
            rows = pd.DataFrame({column: docs[i::n_shards], "id": range(i, len(docs), n_shards)})
            path = folder / f"part-{i:05d}.{fmt}"
            rows.to_json(path, orient="records", lines=True) if fmt == "jsonl" else rows.to_parquet(path)
            out[corpus].append(path)
    return out


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def job_table(results: Path) -> list[dict[str, Any]]:
    """Seconds and peak RSS (MB) of every job, from the Snakemake benchmark files under results/benchmarks."""
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        b = pd.read_csv(tsv, sep="\t").iloc[0]
        rows.append({"job": str(tsv.relative_to(results / "benchmarks").with_suffix("")),
                     "seconds": round(float(b["s"]), 1), "max_rss_mb": round(float(b["max_rss"]), 1)})
    return rows


def sae_metrics(results: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((results / "sae").glob("*/metrics.json")):
        m = json.loads(path.read_text())
        found[path.parent.name] = {k: m.get(k) for k in ("l0", "explained_variance", "explained_loss", "dead_fraction")}
    return found


def run(workdir: Path, budget: str = "tiny", cores: int = 2, timeout: int = 1800) -> dict[str, Any]:
    """Run the workflow on the paper shapes in `workdir`; return jobs, wall time and SAE metrics."""
    write_shards(workdir)
    cfg = merged(yaml.safe_load(CONFIG.read_text()), BUDGETS[budget])
    if "models" in BUDGETS[budget]:  # a lineage replaces the config's, it is not merged into it
        cfg["models"] = copy.deepcopy(BUDGETS[budget]["models"])
    cfg_path = workdir / "paper-shapes.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", str(cores),
           "--configfile", str(cfg_path), "--replace-workflow-config"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - start
    results = workdir / cfg["results_dir"]
    jobs = job_table(results) if results.exists() else []
    return {"budget": budget, "returncode": proc.returncode, "wall_seconds": round(wall, 1),
            "stderr_tail": proc.stderr[-3000:] if proc.returncode else "",
            "peak_rss_mb": max((j["max_rss_mb"] for j in jobs), default=None),
            "jobs": jobs, "saes": sae_metrics(results) if results.exists() else {}, "results": str(results)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=sorted(BUDGETS), default="tiny")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", type=Path, help="keep the run here (default: a temporary folder)")
    ap.add_argument("--out", type=Path, help="default: benchmarks/results/paper_shapes_cpu_<budget>.json")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="paper_shapes_"))
    workdir.mkdir(parents=True, exist_ok=True)
    summary = run(workdir, args.budget, args.cores)
    summary["machine"] = {"cpus": os.cpu_count(), "load_at_end": os.getloadavg()}
    out = args.out or REPO / f"benchmarks/results/paper_shapes_cpu_{args.budget}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    slowest = sorted(summary["jobs"], key=lambda j: -j["seconds"])[:8]
    print(f"rc {summary['returncode']}, wall {summary['wall_seconds']} s, peak RSS {summary['peak_rss_mb']} MB -> {out}")
    for j in slowest:
        print(f"  {j['job']:40s} {j['seconds']:8.1f} s {j['max_rss_mb']:9.1f} MB")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(summary["returncode"])


if __name__ == "__main__":
    main()
