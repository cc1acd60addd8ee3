"""LM training throughput (tokens/s) through the real training loop, demo size and paper size.

Runs `featureflow.lm.train_model` on random token mixtures (throughput does not depend on the
text) and extrapolates the paper-scale base model run (4 epochs of 335.6M tokens; the paper
reports about 10 h per model on an A100). Writes benchmarks/results/lm_throughput.json.

    .venv/bin/python benchmarks/lm_throughput.py            # CPU here; uses CUDA when present
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from featureflow.data import build_tokenizer  # noqa: E402
from featureflow.lm import TrainFiles, train_model  # noqa: E402
from featureflow.settings import Architecture, Resources, TokenizerSettings, TrainJob, TrainSettings, defaults  # noqa: E402

PAPER_ARCH = {"d_model": 512, "d_mlp": 1024, "n_heads": 16, "n_layers": 1, "block_size": 256}
PAPER_TOKENS = 4 * 335.6e6  # 4 epochs over the base model's mixture (paper section 3.1, paper code)


def measure(label: str, arch: dict, tok_dir: Path, vocab: int, batch: int, steps: int, device: str, tmp: Path) -> dict:
    mixture = tmp / f"{label}.npy"
    np.save(mixture, np.random.default_rng(0).integers(0, vocab, arch["block_size"] * batch * (steps + 2)).astype(np.uint16))
    shape = defaults(Architecture, **arch)
    resources = Resources.local(device, torch.get_num_threads())

    def run(name: str, n_steps: int) -> dict:
        schedule = defaults(TrainSettings, tokens=arch["block_size"] * batch * n_steps, batch_size=batch, lr=1e-3)
        job = TrainJob(shape, schedule, checkpoint_every=10**9, keep_checkpoints=False, log_every=10**9)
        out = tmp / name
        files = TrainFiles(mixture_npy=mixture, tokenizer_dir=tok_dir, out_dir=out, train_log=f"{out}_log.csv",
                           train_meta=f"{out}_meta.json", ckpt_dir=tmp / f"{name}_ck")
        return train_model(name=label, files=files, settings=job, seed=0, resources=resources)

    run(f"{label}_warm", 2)  # one short run first: the first steps of a fresh process are slower (allocator, thread pool)
    meta = run(label, steps)
    tok_s = meta["tokens_seen"] / meta["train_seconds"]
    return {"label": label, "arch": arch, "vocab": vocab, "batch_size": batch, "steps": steps,
            "device": meta["device"], "seconds": meta["train_seconds"], "tokens_per_s": round(tok_s, 1)}


def main() -> None:
    demo = yaml.safe_load((REPO / "config.yaml").read_text())["lm"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "runs": []}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        text = tmp / "text.txt"
        text.write_text((REPO / "data/demo/english/english.txt").read_text()[:2_000_000])
        build_tokenizer(defaults(TokenizerSettings, vocab_size=4096), [text], tmp / "bpe")
        build_tokenizer(defaults(TokenizerSettings, kind="mistral"), [], tmp / "mistral")
        demo_run = measure("demo", demo["architecture"], tmp / "bpe", 4096, demo["scratch"]["batch_size"], 60, device, tmp)
        paper_batch, paper_steps = (64, 200) if device == "cuda" else (8, 6)
        paper_run = measure("paper", PAPER_ARCH, tmp / "mistral", 32000, paper_batch, paper_steps, device, tmp)
    paper_run["extrapolated_base_model_hours"] = round(PAPER_TOKENS / paper_run["tokens_per_s"] / 3600, 1)
    paper_run["paper_reports_hours_on_a100"] = 10
    out["runs"] = [demo_run, paper_run]
    path = REPO / "benchmarks/results/lm_throughput.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
