"""The test suite (`make test`) or the demo (`make run`) of two commits on this machine, one after the
other, each from a fresh clone.

The suite's budget (10 minutes on 2 cores, issue #23) and the demo's (10 minutes with set-up) were set
on the machine that ran them when the issues were filed. This machine's speed differs (that machine
measured 145 GFLOP/s fp32 GEMM on 2 cores; here 30-60; benchmarks/README.md) and drifts within an hour, so a time measured
here says little on its own; the ratio to a baseline commit measured in the same hour does. The default
baseline, f3ed4f6, is the code whose suite issue #23 measured (228 tests, pytest 14:27) and whose
README timed the demo (8:11 from an empty results/). Each run reports wall time, the CPU time of its
process tree (what it waited for; SLURM's daemons are not in it), the pytest summary line (or the demo's
last lines) and this machine's matmul speed at its start. Runs go in the order given (base,head,base
brackets the drift). `--target run` times the demo instead. Writes benchmarks/results/suite.json
(demo.json for the demo).

    .venv/bin/python benchmarks/suite.py [--target test|run] [--order base,head] [--base f3ed4f6] [--head HEAD]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASE = "f3ed4f6"  # the suite issue #23 measured (228 tests, pytest 14:27 on the machine of that day)


def matmul_gflops(seconds: float = 3.0) -> float:
    """fp32 GEMM speed on 2 threads (the calibration's 3072x512x4096 product), GFLOP/s."""
    code = ("import time, torch; torch.set_num_threads(2); a, b = torch.randn(3072, 512), torch.randn(512, 4096); a @ b; "
            f"n, t = 0, time.perf_counter()\nwhile time.perf_counter() - t < {seconds}: a @ b; n += 1\n"
            "print(2 * 3072 * 512 * 4096 * n / (time.perf_counter() - t) / 1e9)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return round(float(out.stdout), 1)


def stop_slurm() -> None:
    """A run's leftover SLURM daemons would slow the next one (the tests start their own cluster)."""
    subprocess.run(["pkill", "-x", "slurmctld"], check=False)
    subprocess.run(["pkill", "-x", "slurmd"], check=False)


def run_suite(commit: str, label: str, workdir: Path, target: str = "test") -> dict[str, Any]:
    """`make <target>` of `commit` in a fresh clone that shares this checkout's .venv."""
    clone = workdir / label
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    (clone / ".venv").symlink_to(REPO / ".venv")
    (REPO / ".venv" / ".installed").touch()  # newer than the clone's pyproject.toml: make installs nothing
    stop_slurm()
    gflops = matmul_gflops()
    env = {**os.environ, "FEATUREFLOW_REQUIRE_SLURM": "1", "FEATUREFLOW_REQUIRE_NODE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(["make", target], cwd=clone, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop_slurm()
    out = proc.stdout + proc.stderr
    summary = re.findall(r"^=*\s*(\d+ passed.*?)\s*=*$", out, flags=re.M)
    log = Path(tempfile.gettempdir()) / f"featureflow-{target}-{label}.log"  # kept: the suite's lists the slowest tests
    log.write_text(out)
    return {"label": label, "commit": subprocess.run(["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
                                                     capture_output=True, text=True).stdout.strip(),
            "returncode": proc.returncode, "wall_seconds": round(wall, 1),
            "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "summary": summary[-1] if summary else out.strip().splitlines()[-3:], "matmul_gflops_at_start": gflops,
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - wall)), "log": str(log)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=BASE)
    parser.add_argument("--head", default="HEAD")
    parser.add_argument("--order", default="base,head", help="comma-separated labels, run in this order")
    parser.add_argument("--target", default="test", choices=["test", "run"], help="make test (the suite) or make run (the demo)")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/suite.json, or demo.json for --target run")
    args = parser.parse_args()
    out = Path(args.out or REPO / "benchmarks" / "results" / ("suite.json" if args.target == "test" else "demo.json"))
    commits = {"base": args.base, "head": args.head}
    with tempfile.TemporaryDirectory(prefix="suite-") as tmp:
        runs = []
        for i, label in enumerate(args.order.split(",")):
            runs.append(run_suite(commits[label], f"{label}{i}", Path(tmp), args.target) | {"kind": label})
            print(json.dumps(runs[-1]), flush=True)
            shutil.rmtree(Path(tmp) / f"{label}{i}", ignore_errors=True)
    walls: dict[str, list[float]] = {}
    for r in runs:
        walls.setdefault(r["kind"], []).append(r["wall_seconds"])
    mean = {k: sum(v) / len(v) for k, v in walls.items()}
    result = {"target": f"make {args.target}", "runs": runs, "machine": {"cpus": os.cpu_count()},
              "head_over_base_wall": round(mean["head"] / mean["base"], 3) if {"head", "base"} <= set(mean) else None}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))


if __name__ == "__main__":
    main()
