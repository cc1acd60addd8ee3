"""SAE training loop (`train_sae`, activations included) against its optimizer step alone, same size.

The loop's overheads are everything around the step: computing activations with the LM, shuffling
them, moving them, and reading statistics back. The step alone is the same SAE, batch and autocast
on activations already in place. Their ratio is the share of the step's speed the loop reaches
(issue: >= 70% on a GPU). Writes benchmarks/results/sae_loop_<device>.json.

    .venv/bin/python benchmarks/sae_loop.py                 # paper size on CUDA, demo size on a CPU
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from featureflow.lm import build_model, save_model  # noqa: E402
from featureflow.sae import SAEFiles, train_sae  # noqa: E402
from featureflow.sae.architectures import STANDARD  # noqa: E402
from featureflow.sae.model import SparseAutoencoder  # noqa: E402
from featureflow.settings import Architecture, Resources, SAESettings, defaults  # noqa: E402

PAPER = {"d_model": 512, "d_mlp": 1024, "n_heads": 16, "n_layers": 1, "block_size": 256}
DEMO = {"d_model": 128, "d_mlp": 512, "n_heads": 4, "n_layers": 1, "block_size": 128}


def step_alone(sae_settings: SAESettings, d_in: int, device: torch.device, steps: int, compiled: bool = False) -> float:
    """Tokens/s of the SAE step alone on random activations already on the device (compiled as train_sae does)."""
    batch = sae_settings.batch_blocks * sae_settings.context_size
    sae = SparseAutoencoder(d_in, d_in * sae_settings.expansion_factor, seed=0).to(device)
    opt = torch.optim.Adam(sae.parameters(), lr=sae_settings.lr, betas=sae_settings.betas, fused=compiled and device.type == "cuda")
    xs = [torch.randn(batch, d_in, device=device).relu() for _ in range(4)]
    bf16 = sae_settings.bf16 or device.type == "cuda"
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    terms_of = torch.compile(STANDARD.loss_terms) if compiled else STANDARD.loss_terms
    l1 = sae_settings.options["l1_coefficient"]
    l1 = torch.tensor(l1, device=device) if compiled else l1

    def step(i: int) -> None:
        with autocast():
            terms = terms_of(sae, xs[i % 4], {"l1": l1})
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        sae.remove_parallel_grad()
        opt.step()
        sae.normalise_decoder()

    for i in range(5):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, help="SAE training tokens (default: 6M on CUDA, 200k on a CPU)")
    ap.add_argument("--out")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    shape, vocab = (PAPER, 32000) if cuda else (DEMO, 4096)
    tokens = args.tokens or (6_000_000 if cuda else 200_000)
    settings = defaults(SAESettings, expansion_factor=16 if cuda else 4, tokens=tokens, checkpoint_every=10**9,
                        log_every=50, buffer_tokens=1_000_000 if cuda else 100_000)
    threads = torch.get_num_threads()
    result = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__, "threads": threads,
              "d_in": shape["d_mlp"], "d_sae": shape["d_mlp"] * settings.expansion_factor,
              "batch_tokens": settings.batch_blocks * settings.context_size, "tokens": tokens,
              "note": "loop = train_sae end to end (LM forward for activations, shuffle, step, logging); "
                      "step alone = the same SAE step on activations already on the device; "
                      "compiled = torch.compile + fused Adam (resources.sae.compile, on by default on CUDA)"}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        (tmp / "tok").mkdir()
        save_model(build_model(defaults(Architecture, **shape), vocab, 0, seed=0), tmp / "tok", tmp / "lm")
        np.save(tmp / "tokens.npy", np.random.default_rng(0).integers(0, vocab, 4_000_000).astype(np.uint16))
        for label, compiled in (("eager", False), ("compiled", True)) if cuda else (("eager", False),):
            res = Resources(device.type, threads, compile=compiled, tensorboard=False)
            # a short warm-up run first: compiled code is cached in the process, so the timed run has no compile time
            warm = dataclasses.replace(settings, tokens=settings.batch_blocks * settings.context_size * 20)
            warm_files = SAEFiles(model_dir=tmp / "lm", token_files=[tmp / "tokens.npy"], out_dir=tmp / f"w{label}",
                                  train_log=tmp / f"w{label}.csv", ckpt_dir=tmp / f"wckpt_{label}")
            train_sae(name="warm", files=warm_files, settings=warm, seed=0, resources=res)
            files = SAEFiles(model_dir=tmp / "lm", token_files=[tmp / "tokens.npy"], out_dir=tmp / label,
                             train_log=tmp / f"{label}.csv", ckpt_dir=tmp / f"ckpt_{label}")
            extra = train_sae(name="bench", files=files, settings=settings, seed=0, resources=res)
            loop = tokens / extra["train_seconds"]
            alone = step_alone(settings, shape["d_mlp"], device, steps=200 if cuda else 20, compiled=compiled)
            result[label] = {"loop_tok_s": round(loop, 1), "step_alone_tok_s": round(alone, 1), "loop_vs_step": round(loop / alone, 3)}
    out = Path(args.out or REPO / "benchmarks/results" / f"sae_loop_{'cuda' if cuda else 'cpu'}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
