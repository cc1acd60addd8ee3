"""OpenMP wait policy for two torch processes side by side on a 2-core machine (why `make test` sets
OMP_WAIT_POLICY=PASSIVE).

`make test` runs two pytest-xdist workers; each runs workflow jobs and in-process tests that use
torch with 2 intra-op threads, so 4 threads share 2 cores. By default an OpenMP thread spins for a
while after each parallel region before it sleeps, and a spinning thread holds a core that the
other process needs. This times the same small SAE training loop (featureflow.sae.model, the size of
the tests' SAEs) alone and as two processes at once, with the default policy and with PASSIVE.
Writes benchmarks/results/omp_wait.json.

    .venv/bin/python benchmarks/omp_wait.py [--steps 2000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOOP = """
import sys, time, torch
sys.path.insert(0, {src!r})
from featureflow.sae.architectures import STANDARD
from featureflow.sae.model import SparseAutoencoder
torch.set_num_threads(2)
torch.manual_seed(0)
x = torch.randn(256, 64)
sae = SparseAutoencoder(64, 256, seed=0)
opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
start = time.perf_counter()
for _ in range({steps}):
    loss = STANDARD.loss_terms(sae, x, {"l1": 3e-3})["loss"]
    opt.zero_grad()
    loss.backward()
    opt.step()
    sae.normalise_decoder()
print(time.perf_counter() - start)
"""


def timed(processes: int, policy: str | None, steps: int) -> dict[str, float]:
    """Wall time of `processes` copies of the loop started together, and each one's own loop time."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    code = LOOP.format(src=str(REPO / "src"), steps=steps)
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    loops = [float(p.communicate()[0]) for p in procs]
    return {"wall_s": round(time.perf_counter() - start, 2), "loop_s": [round(t, 2) for t in loops]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    rows = []
    for repeat in range(args.repeats):
        for processes in (1, 2):
            for policy in (None, "PASSIVE"):
                r = timed(processes, policy, args.steps)
                rows.append({"repeat": repeat, "processes": processes, "policy": policy or "default", **r})
                print(rows[-1], flush=True)

    def best(processes: int, policy: str, key: str) -> float:
        return min(max(r[key]) if key == "loop_s" else r[key] for r in rows if r["processes"] == processes and r["policy"] == policy)

    # the loop's own time is what waiting changes; the wall time adds each process's ~5 s of imports
    summary = {f"{name}_{key}": round(best(n, slow, key) / best(n, fast, key), 2) for key in ("loop_s", "wall_s")
               for name, n, slow, fast in (("alone_passive_over_default", 1, "PASSIVE", "default"),
                                           ("side_by_side_default_over_passive", 2, "default", "PASSIVE"))}
    out = REPO / "benchmarks" / "results" / "omp_wait.json"
    out.write_text(json.dumps({"cpus": os.cpu_count(), "steps": args.steps, "torch_threads": 2, "runs": rows,
                               "summary": summary}, indent=2) + "\n")
    print(summary)


if __name__ == "__main__":
    main()
