"""Peak memory of the SAE jobs on this machine's CPU against `featureflow.sae.memory`'s estimate.

    .venv/bin/python benchmarks/sae_memory.py          # demo and paper shapes, ~10 min on 2 cores

Builds random-weight LMs of the demo's and the paper's shapes on random tokens, runs `train_sae` and
`evaluate_sae` (on a random SAE) in child processes, and reads each child's peak RSS (VmHWM) from
/proc. Training stops after STEPS logged steps: by then the job has sampled the activations' scale
and mean, made its first chunk and taken a step, and holds all it will hold (one chunk at a time).
Writes benchmarks/results/sae_memory.json; the "Memory of the SAE jobs" table of docs/performance.md quotes it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from featureflow.lm import (  # noqa: E402
    LMShape,  # noqa: E402
    build_model,
    save_model,
)
from featureflow.sae import sae_eval_memory, sae_train_memory  # noqa: E402
from featureflow.sae.model import SparseAutoencoder, saelens_cfg, save_sae  # noqa: E402
from featureflow.settings import Architecture, SAESettings, defaults  # noqa: E402

STEPS = 3
SHAPES = {  # architecture, vocabulary, the config's SAE settings
    "demo": ({"d_model": 128, "d_mlp": 512, "n_heads": 4, "n_layers": 1, "block_size": 128}, 4096,
             {"expansion_factor": 4, "tokens": 500_000, "batch_blocks": 24, "buffer_tokens": 250_000, "normalize": "unit_rms"}),
    "paper": ({"d_model": 512, "d_mlp": 1024, "n_heads": 16, "n_layers": 1, "block_size": 256}, 32000, {}),
}
CASES = [  # (shape, job, SAE settings over the shape's, note)
    ("demo", "sae", {}, "config.yaml"),
    ("demo", "sae_eval", {"eval_tokens": 20_000}, "config.yaml"),
    ("paper", "sae", {}, "paper.yaml's recipe (15M tokens, 1M-token buffer)"),
    ("paper", "sae", {"tokens": 30_000}, "30k SAE tokens, the default 1M-token buffer (issue 22: 13.1 GB before the fix)"),
    ("paper", "sae_eval", {"eval_tokens": 20_000}, "batches of 32 x 256 tokens, vocab 32000"),
]
CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, {src!r})
from featureflow.settings import Resources, SAESettings, defaults
root, job, over = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
res = Resources.local("cpu", 2)
if job == "sae":
    from featureflow.sae import SAEFiles, train_sae
    s = defaults(SAESettings, **{{**over, "log_every": 1, "checkpoint_every": 10**9}})
    files = SAEFiles(model_dir=root / "lm", token_files=[root / "tokens.npy"], out_dir=root / "trained",
                     train_log=root / "train_log.csv", ckpt_dir=root / "ckpt")
    train_sae(name="m", files=files, settings=s, seed=0, resources=res)
else:
    from featureflow.sae import evaluate_sae, held_out_blocks
    blocks = held_out_blocks([root / "tokens.npy"], int(sys.argv[4]), over["eval_tokens"])
    evaluate_sae(root / "lm", root / "sae", blocks, "blocks.0.mlp.hook_post", res)
"""


def peak_mb(root: Path, job: str, over: dict, block: int) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one job in a child process; training is stopped after STEPS steps."""
    log = root / "train_log.csv"
    log.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(src=str(REPO / "src")), str(root), job, json.dumps(over), str(block)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0, peak = time.time(), 0.0
    while proc.poll() is None:
        try:
            peak = max(peak, int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{proc.pid}/status").read_text()).group(1)) / 1024)
        except (FileNotFoundError, AttributeError):
            break
        if job == "sae" and log.exists() and len(log.read_text().splitlines()) > STEPS:
            proc.kill()
            break
        time.sleep(0.5)
    proc.wait()
    return peak, time.time() - t0


def main() -> None:
    results = []
    with tempfile.TemporaryDirectory() as t:
        for name, (arch, vocab, recipe) in SHAPES.items():
            root = Path(t) / name
            (root / "tok").mkdir(parents=True)
            save_model(build_model(defaults(Architecture, **arch), vocab, 0, seed=0), root / "tok", root / "lm")
            np.save(root / "tokens.npy", np.random.default_rng(0).integers(0, vocab, 2_000_000).astype(np.uint16))
            d_sae = arch["d_mlp"] * recipe.get("expansion_factor", 16)
            sae = SparseAutoencoder(arch["d_mlp"], d_sae, seed=0)
            save_sae(sae, root / "sae", saelens_cfg(sae, "m", "blocks.0.mlp.hook_post", 24, "random"), {"activation_scale": 1.0})
            shape = LMShape(arch["d_model"], arch["d_mlp"], arch["n_layers"], arch["n_heads"], vocab)
            for case_shape, job, over, note in CASES:
                if case_shape != name:
                    continue
                settings = {**recipe, **over}
                if job == "sae":
                    estimate = sae_train_memory(defaults(SAESettings, **settings), shape, "cpu", (root / "tokens.npy").stat().st_size)
                else:
                    estimate = sae_eval_memory(d_sae, shape, arch["block_size"], 32, "cpu")
                measured, seconds = peak_mb(root, job, settings, arch["block_size"])
                row = {"shape": name, "job": job, "settings": settings, "note": note, "measured_mb": round(measured),
                       "estimated_mb": round(estimate.host_mb), "measured_vs_estimated": round(measured / estimate.host_mb, 2),
                       "estimate": estimate.describe(), "seconds": round(seconds, 1)}
                print(json.dumps(row), flush=True)
                results.append(row)
    out = REPO / "benchmarks/results/sae_memory.json"
    out.write_text(json.dumps({"machine": "this CPU (2 cores), random-weight LMs on random tokens", "steps": STEPS,
                               "cases": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
