"""Profiles: `snakemake --profile a100` as a user types it, and a workflow profile that leaves it alone."""

import os
import re
import subprocess
import sys

import yaml

from featureflow.config import SCHEMA_PATH
from featureflow.plan import load_plan
from helpers import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def dry_run(*args: str, home: str | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("SNAKEMAKE_PROFILE", None)
    if home:
        env["HOME"] = home
    run = subprocess.run([*SNAKEMAKE, "-n", "--forceall", *args], cwd=REPO, capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout + run.stderr


def jobs(output: str) -> list[dict]:
    """rule, threads (1 when Snakemake omits the line) and resources of every job of a dry run."""
    found = []
    for block in re.split(r"\n(?=\[.*\]\n(?:local)?rule )", output):
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        if not rule or rule.group(1) == "all":
            continue
        threads = re.search(r"^\s+threads: (\d+)", block, flags=re.M)
        res = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        found.append({"rule": rule.group(1), "threads": int(threads.group(1)) if threads else 1,
                      "resources": dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}})
    return found


def paper_plan():
    return load_plan(yaml.safe_load((REPO / "config/paper.yaml").read_text()), SCHEMA_PATH, workdir=REPO)


CLASS_OF = {"corpus": "light", "fetch_corpus": "light", "mixture": "light", "token_summary": "light", "eval_table": "light", "sae_table": "light",
            "lm_curves": "light", "sae_curves": "light",
            "common_sample": "light", "classify": "light", "sankey": "light", "tokenizer": "tokenize", "tokens": "tokenize",
            "train": "train", "merge_sweep": "merge", "merge": "merge", "sae": "sae", "evaluate": "gpu_eval",
            "feature_acts": "gpu_eval", "sae_eval": "gpu_eval", "correlate": "cpu_eval", "feature_stats": "cpu_eval",
            "case_studies": "light", "browser": "light", "browser_threshold": "light",
            "interp_estimate": "light", "report": "light", "threshold_curve": "light", "null": "cpu_eval",
            "sae_seed_control": "sae", "control_acts": "gpu_eval", "sae_seed_corr": "cpu_eval",
            "decoder_cosine": "cpu_eval", "one_to_one": "light", "criteria": "light"}


def check_paper_dag(output: str) -> None:
    """The whole paper DAG, each job with its class' threads, memory, runtime and GPU request."""
    plan = paper_plan()
    found = jobs(output)
    assert len(found) == 81, len(found)  # 61 of the paper, 11 of its controls, 9 of the matching criteria
    for job in found:
        cls = plan.job_class(CLASS_OF[job["rule"]])
        assert job["threads"] == cls.threads, job
        res = job["resources"]
        assert int(res["mem_mb"]) == cls.mem_mb and int(res["runtime"]) == cls.runtime, job
        if cls.gpus:
            assert (res["gpu"], res["gpu_model"], res["cpus_per_gpu"]) == ("1", "a100", str(cls.threads)), job
        else:
            assert res["gpu"] == "0" and "gpu_model" not in res and res["cpus_per_task"] == str(cls.threads), job
    assert sum(j["rule"] == "fetch_corpus" for j in found) == 4, "paper corpora come from the hub"
    assert {j["rule"] for j in found if j["resources"]["gpu"] == "1"} == {"train", "merge_sweep", "merge", "sae",
                                                                           "evaluate", "sae_eval", "feature_acts",
                                                                           "sae_seed_control", "control_acts"}


def test_profile_by_path_shows_the_paper_dag_on_gpus():
    out = dry_run("--profile", "profiles/a100")
    assert "profiles/a100 and workflow specific profile profiles/default" in out
    check_paper_dag(out)
    assert "results/paper/data/corpora/python/train.txt" in out  # the paper config alone, not layered on the demo's


def test_profile_by_name_after_make_install(tmp_path):
    """`make install` links profiles/a100 where Snakemake looks names up; then the name works as typed."""
    run = subprocess.run(["make", "install"], cwd=REPO, capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)},
                         timeout=1800)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert (tmp_path / ".config/snakemake/a100").resolve() == (REPO / "profiles/a100").resolve()
    check_paper_dag(dry_run("--profile", "a100", home=str(tmp_path)))


def test_the_workflow_profile_gives_the_demo_two_cores_only_without_a_global_profile():
    demo = jobs(dry_run())
    assert max(j["threads"] for j in demo) == 2, "plain `snakemake` runs the demo on 2 cores"
    paper = jobs(dry_run("--profile", "profiles/a100"))
    assert max(j["threads"] for j in paper) == 16, "a global profile keeps its own cores (threads are not cut to 2)"
