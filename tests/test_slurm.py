"""The workflow on a real SLURM cluster (one node on loopback): every job through sbatch, GPU requests
that reach the scheduler, results equal to a local run, cheap reruns, and resuming after the head
job is killed hard and its training job is cancelled.

CI installs SLURM (.ci/run) and sets FEATUREFLOW_REQUIRE_SLURM=1, so there these tests cannot skip.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from slurm_cluster import LocalSlurm, available

from featureflow.lm import TrainFiles, load_model, train_model
from featureflow.plan import load_plan
from featureflow.settings import Resources
from helpers import REPO, SCHEMA, dump_yaml, micro_lock

MICRO = REPO / "config" / "micro.yaml"
FAKE_GPUS = REPO / "tests" / "slurm" / "fake_gpus.yaml"
PROFILE = REPO / "tests" / "slurm" / "profile"
HEAD = REPO / "tests" / "slurm" / "head.py"  # Snakemake's command line, polling the cluster every 2 s
TABLES = ("lm/eval.tsv", "sae/metrics.tsv", "flow/edges.csv", "flow/counts.csv")
# The cluster runs stop at the Sankey: the analysis and autointerp rules after it are light local
# work (tested locally), and 10 s of sbatch each here.
TARGETS = ["results/" + t for t in (*TABLES, "flow/fig2_sankey.png")]
FORCED = "results/lm/luastories/model.safetensors"  # merged again on the cluster, with everything below it
GPU_RULES = {"train", "merge_sweep", "merge", "sae", "evaluate", "sae_eval", "feature_acts", "sae_seed_control", "control_acts"}

why_not = available()
if why_not and os.environ.get("FEATUREFLOW_REQUIRE_SLURM") == "1":
    raise RuntimeError(f"FEATUREFLOW_REQUIRE_SLURM=1 but {why_not}")
pytestmark = pytest.mark.skipif(why_not is not None, reason=why_not or "")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    slurm = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    slurm.start()
    yield slurm
    slurm.stop()


def snakemake_slurm(cluster, workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(HEAD), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--profile", str(PROFILE),
           "--verbose", *args]
    env = {**cluster.env, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir)


def submitted(run: subprocess.CompletedProcess) -> dict[str, list[str]]:
    """Rule -> the sbatch command lines Snakemake submitted for it (from its verbose log)."""
    calls: dict[str, list[str]] = {}
    for line in (run.stdout + run.stderr).splitlines():
        if "sbatch call:" in line:
            rule = re.search(r"--comment '?rule_(\w+?)(?:_wildcards_\S*)?'?\s", line).group(1)
            calls.setdefault(rule, []).append(line)
    return calls


def slurm_job_ids(run: subprocess.CompletedProcess) -> set[int]:
    return {int(i) for i in re.findall(r"SLURM jobid (\d+)", run.stdout + run.stderr)}


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Rule -> how many jobs a dry run of the SLURM targets plans in `workdir`."""
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "1",
                          *TARGETS, "--configfile", str(MICRO), str(FAKE_GPUS), "-n", "--quiet", "rules", *args],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    counts = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", dry.stdout, flags=re.M)}
    counts.pop("total", None)
    return counts


@pytest.fixture(scope="module")
def slurm_run(cluster, micro_run, tmp_path_factory):
    """A copy of the local micro run on the cluster, with the merged model forced to merge again: it and
    every job below it (13 jobs, of the job classes merge, sae, gpu_eval, cpu_eval and light) go through
    sbatch. The train class and the data rules run through sbatch in the resume test below. (Forcing
    the Lua model instead, 21 jobs, added 8 jobs of classes already here and ~2 minutes to the suite.)"""
    wd = tmp_path_factory.mktemp("slurm_micro") / "run"
    with micro_lock(micro_run[0]):
        shutil.copytree(micro_run[0], wd, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    planned = planned_jobs(wd, "--forcerun", FORCED)
    assert {"merge", "evaluate", "sae", "sae_eval", "correlate", "classify", "eval_table"} <= set(planned), planned
    assert "train" not in planned, planned
    assert "corpus" not in planned and "tokens" not in planned, planned
    before = set(cluster.finished_jobs())
    run = snakemake_slurm(cluster, wd, *TARGETS, "--configfile", str(MICRO), str(FAKE_GPUS), "--forcerun", FORCED)
    assert run.returncode == 0, run.stderr[-4000:]
    return wd, run, before, planned


def test_every_job_went_through_sbatch(cluster, slurm_run):
    wd, run, before, planned = slurm_run
    ids = slurm_job_ids(run)
    finished = {i: f for i, f in cluster.finished_jobs().items() if i not in before}
    assert ids and ids == set(finished), "every submitted job finished in SLURM, and nothing else ran"
    assert all(f["JobState"] == "COMPLETED" for f in finished.values())
    calls = submitted(run)
    assert sum(len(v) for v in calls.values()) == len(ids), "one sbatch call per SLURM job"
    assert {rule: len(v) for rule, v in calls.items()} == planned
    assert planned_jobs(wd) == {}, "nothing is left to do"


def test_gpu_rules_asked_slurm_for_the_gpu_and_cheap_rules_did_not(cluster, slurm_run):
    _, run, _, _ = slurm_run
    for rule, lines in submitted(run).items():
        for line in lines:
            if rule in GPU_RULES:
                assert "--gpus=a100:1" in line and "--cpus-per-gpu=2" in line and "--mem 2000" in line, line
            else:
                assert "--gpus" not in line and "--cpus-per-task=" in line and "--cpus-per-gpu" not in line, line


def test_results_equal_a_local_run(micro_run, slurm_run):
    """The cluster run and the local micro run agree to the byte on the tables, and exactly on every
    edge's matches (edges.csv and counts.csv follow from them; the local run's may be at another
    threshold for a moment, while a test in another process reruns it)."""
    local, _ = micro_run
    remote, run, _, _ = slurm_run
    assert {"eval_table", "sae_table", "correlate"} <= set(submitted(run)), "what is compared was written in SLURM"
    for table in ("lm/eval.tsv", "sae/metrics.tsv"):
        assert (remote / "results" / table).read_bytes() == (local / "results" / table).read_bytes(), table
    edges = sorted(p.name for p in (remote / "results/flow/corr").glob("*.npz"))
    assert len(edges) == 4 and edges == sorted(p.name for p in (local / "results/flow/corr").glob("*.npz"))
    for name in edges:
        a, b = (np.load(root / "results/flow/corr" / name) for root in (remote, local))
        for key in ("fwd_idx", "fwd_corr", "bwd_idx", "bwd_corr", "active_a", "active_b"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")


def test_threshold_change_submits_classify_and_sankey_only(cluster, slurm_run):
    wd, _, _, _ = slurm_run
    at_08 = {t: (wd / "results" / t).read_bytes() for t in ("flow/edges.csv", "flow/counts.csv")}
    assert set(pd.read_csv(wd / "results/flow/counts.csv")["threshold"]) == {0.8}
    before = set(cluster.finished_jobs())
    run = snakemake_slurm(cluster, wd, *TARGETS, "--configfile", str(MICRO), str(FAKE_GPUS), "--config", "threshold=0.5")
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(submitted(run)) == ["classify", "sankey"]
    assert len(set(cluster.finished_jobs()) - before) == 2
    assert set(pd.read_csv(wd / "results/flow/counts.csv")["threshold"]) == {0.5}
    assert all((wd / "results" / t).read_bytes() != before_bytes for t, before_bytes in at_08.items())


def test_batch_script_resumes_after_the_head_is_killed_hard(cluster, slurm_run, tmp_path):
    """Kill the head job's Snakemake hard while the base model trains in its own SLURM job. The batch
    script run again must cancel that orphaned job, clear the stale lock, and resume training from
    the checkpoint, ending with the weights of an uninterrupted run. The data comes from the cluster
    run above but for the Python tokens and the base model's mixture, so that data rules of both
    their job classes run through sbatch too."""
    cfg = yaml.safe_load(MICRO.read_text())
    cfg["lm"]["scratch"]["tokens"] = 60_000  # long enough to be killed early (234 steps, ~6 s on 2 cores; a checkpoint every 25)
    cfg["lm"]["checkpoint_every"] = 25
    config = dump_yaml(cfg, tmp_path / "long.yaml")
    target = "results/lm/babypython/model.safetensors"
    wd = tmp_path / "run"
    shutil.copytree(slurm_run[0] / "results/data", wd / "results/data")
    shutil.copytree(slurm_run[0] / ".snakemake/metadata", wd / ".snakemake/metadata")
    (wd / "data").symlink_to(REPO / "data")
    for redo in ("tokens/python", "mixtures/babypython"):
        shutil.rmtree(wd / "results/data" / redo)
    head_cmd = tmp_path / "snakemake"  # what submit.sbatch runs as Snakemake
    head_cmd.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HEAD}" "$@"\n')
    head_cmd.chmod(0o755)
    env = {**cluster.env, "PYTHONPATH": str(REPO / "src"), "FEATUREFLOW_PROFILE": str(PROFILE), "SNAKEMAKE": str(head_cmd)}
    args = ["bash", str(REPO / "workflow/submit.sbatch"), "-s", str(REPO / "Snakefile"), target, "--configfile", str(config),
            str(FAKE_GPUS)]
    head_log = tmp_path / "head.log"
    with open(head_log, "w") as log:
        head = subprocess.Popen(args, cwd=wd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ckpt = wd / "results/checkpoints/lm/babypython"
    deadline = time.time() + 600
    while not list(ckpt.glob("step_*.pt")) and time.time() < deadline and head.poll() is None:
        time.sleep(0.5)
    assert head.poll() is None, "the head ended before the base model wrote a checkpoint:\n" + head_log.read_text()[-3000:]
    os.killpg(head.pid, signal.SIGKILL)  # the head job and its Snakemake, as a hard node failure would
    head.wait()
    orphans = [line for line in cluster.queued_or_running() if line.split()[1].startswith("featureflow_")]
    assert orphans, "the training job outlives its head"
    assert list((wd / ".snakemake/locks").glob("*")), "a head killed hard leaves its lock behind"

    again = subprocess.run(args, cwd=wd, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "cancelling jobs an earlier head left behind" in again.stdout
    meta = json.loads((wd / "results/lm/babypython/train_meta.json").read_text())
    assert 0 < meta["resumed_from_step"] < meta["steps"], meta
    said = head_log.read_text() + again.stdout + again.stderr
    assert all(f"rule {rule}:" in said for rule in ("tokens", "mixture")), "data rules ran as SLURM jobs"

    # the same training, uninterrupted, on the data the cluster run prepared
    plan = load_plan({**cfg, "resources": yaml.safe_load(FAKE_GPUS.read_text())["resources"]}, SCHEMA, workdir=REPO)
    res, out = wd / "results", tmp_path / "straight"
    files = TrainFiles(mixture_npy=res / "data/mixtures/babypython/train.npy", tokenizer_dir=res / "data/tokenizer", out_dir=out,
                       train_log=out / "train_log.csv", train_meta=out / "train_meta.json", ckpt_dir=tmp_path / "straight_ckpt")
    train_model(name="babypython", files=files, settings=plan.train_job("babypython"), seed=cfg["seed"],
                resources=Resources.local(plan.job_class("train").device, plan.job_class("train").threads))
    resumed, uninterrupted = load_model(res / "lm/babypython"), load_model(out)
    for (name, a), (_, b) in zip(resumed.state_dict().items(), uninterrupted.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
