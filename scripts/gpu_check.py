#!/usr/bin/env python3
"""Run every torch stage of a tiny lineage on CUDA and on the CPU, and compare them.

A check for a machine with a GPU (no Snakemake needed): the stage functions are called as the
rules call them, with `Resources.local(device, threads)`, as a job class gives them. It trains a base
model, two fine-tunes, their SLERP merge (sweep + merged model), an SAE per model, and the feature
activations on a common sample, once with `device="cuda"` and once with `device="cpu"`, and writes
what differs to a JSON file:

    python3 scripts/gpu_check.py --out gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from featureflow.data import build_tokenizer, tokenize_split  # noqa: E402
from featureflow.flow import FeatureSource, compute_feature_acts, draw_common_sample, load_acts, save_sample  # noqa: E402
from featureflow.lm import ParentModel, TrainFiles, evaluate_model, train_model  # noqa: E402
from featureflow.merge import MergedFiles, MergeSpec, build_merged, run_sweep  # noqa: E402
from featureflow.sae import SAEFiles, evaluate_sae, held_out_blocks, train_sae  # noqa: E402
from featureflow.settings import (  # noqa: E402
    Architecture,
    MergeSettings,
    Resources,
    SAESettings,
    TokenizerSettings,
    TrainJob,
    TrainSettings,
    defaults,
)

WORDS = {
    "english": "the little house stood by a quiet river and every morning she walked to town".split(),
    "lua": "local function end then elseif nil require return table pairs ipairs".split(),
    "stories": "once upon a time there was a happy dog who loved to play ball".split(),
}


def corpora(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    out = {}
    for name, words in WORDS.items():
        docs = [" ".join(words[j] for j in rng.integers(0, len(words), 80)) for _ in range(300)]
        out[name] = root / f"{name}.txt"
        out[name].write_text("\n\x1e\n".join(docs))
    return out


def lineage(root: Path, tok: Path, tokens: dict[str, Path], device: str) -> dict:
    """Every torch stage on `device`; returns timings and the paths it wrote."""
    res = Resources.local(device, 4)
    arch = defaults(Architecture, d_model=64, d_mlp=256, n_heads=4, n_layers=1, block_size=64)
    times: dict[str, float] = {}

    def timed(label, fn, *args, **kw):
        t = time.perf_counter()
        out = fn(*args, **kw)
        if device == "cuda":
            torch.cuda.synchronize()
        times[label] = round(time.perf_counter() - t, 2)
        return out

    models = {}
    for name, parent, corpus, steps in (("base", None, "english", 400), ("lua", "base", "lua", 150),
                                        ("stories", "base", "stories", 150)):
        schedule = defaults(TrainSettings, tokens=64 * 16 * steps, batch_size=16, lr=2e-3, warmup_steps=10)
        job = TrainJob(arch, schedule, checkpoint_every=50, keep_checkpoints=False, log_every=10)
        out = root / device / name
        files = TrainFiles(mixture_npy=tokens[corpus], tokenizer_dir=tok, out_dir=out, train_log=out / "train_log.csv",
                           train_meta=out / "train_meta.json", ckpt_dir=root / device / f"ckpt_{name}")
        timed(f"train_{name}", train_model, name=name, files=files, settings=job, seed=0, resources=res,
              parent=ParentModel(model_dir=models[parent], name=parent) if parent else None)
        models[name] = str(out)
    validation = {c: str(tokens[c]) for c in tokens}
    evals = {m: timed(f"evaluate_{m}", evaluate_model, d, validation, root / device / f"eval_{m}.json", 4096, 64, res)
             for m, d in models.items()}
    spec = MergeSpec("lua", "stories", "base", "slerp", "auto", dict(models),
                     {"lua": [str(tokens["lua"])], "stories": [str(tokens["stories"])]})
    merge = defaults(MergeSettings, grid_step=0.25, refine_step=0.05, eval_tokens=4096)
    rows, summary = timed("merge_sweep", run_sweep, spec, merge, 64, res)
    sweep_json = root / device / "sweep.json"
    sweep_json.write_text(json.dumps(summary))
    merged = root / device / "merged"
    choice = timed("merge", build_merged, name="merged", spec=spec,
                   files=MergedFiles(sweep_json=sweep_json, out_dir=merged, choice_json=root / device / "choice.json"),
                   settings=merge, batch_size=64, resources=res)
    models["merged"] = str(merged)
    sae = defaults(SAESettings, expansion_factor=4, tokens=24 * 64 * 300, batch_blocks=64, lr=3e-3, l1_coefficient=5e-3,
                   normalize="unit_rms", buffer_tokens=24 * 64 * 50, checkpoint_every=10**6, log_every=50)
    sample = root / "sample.npz"
    if not sample.exists():
        save_sample(draw_common_sample({c: str(p) for c, p in tokens.items()}, 24_000, 24, 0), sample)
    sae_metrics = {}
    for m, d in models.items():
        sae_dir = root / device / f"sae_{m}"
        files = SAEFiles(model_dir=d, token_files=[str(p) for p in tokens.values()], out_dir=sae_dir, train_log=sae_dir / "train_log.csv",
                         ckpt_dir=root / device / f"sae_ckpt_{m}")
        timed(f"sae_{m}", train_sae, name=m, files=files, settings=sae, seed=0, resources=res)
        blocks = held_out_blocks([str(p) for p in tokens.values()], 64, 6000)
        sae_metrics[m] = {k: v for k, v in evaluate_sae(d, sae_dir, blocks, sae.hook, res).items()
                          if k in ("l0", "explained_variance", "explained_loss", "dead_fraction")}
        timed(f"feature_acts_{m}", compute_feature_acts, model=m, source=FeatureSource(model_dir=d, sae_dir=sae_dir, hook_name=sae.hook),
              sample_npz=sample, out_npz=root / device / f"acts_{m}.npz", batch_tokens=8192, resources=res)
    return {"times_s": times, "evals": evals, "sweep_t": summary["equilibrium_t"], "choice": choice, "sae": sae_metrics,
            "models": models}


def compare_acts(root: Path, models: list[str]) -> dict:
    """Feature activations of the CPU-trained models and SAEs computed on both devices."""
    out = {}
    for m in models:
        sae_dir = root / "cpu" / f"sae_{m}"
        model_dir = root / "cpu" / m
        for device in ("cuda", "cpu"):
            compute_feature_acts(model=m, source=FeatureSource(model_dir=model_dir, sae_dir=sae_dir, hook_name="blocks.0.mlp.hook_post"),
                                 sample_npz=root / "sample.npz", out_npz=root / f"cross_{device}_{m}.npz", batch_tokens=8192,
                                 resources=Resources.local(device, 4))
        a, _, _ = load_acts(root / f"cross_cuda_{m}.npz")
        b, _, _ = load_acts(root / f"cross_cpu_{m}.npz")
        diff = abs(a - b)
        out[m] = {"nnz_cuda": int(a.nnz), "nnz_cpu": int(b.nnz), "max_abs_diff": float(diff.max()),
                  "positions_x_features_firing_on_one_device_only": int(a.nnz + b.nnz - 2 * a.multiply(b).nnz)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="gpu_check.json")
    ap.add_argument("--cpu-only", action="store_true", help="run the CPU half only (to try the script without a GPU)")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.cpu_only:
        raise SystemExit("no CUDA device: this check needs a GPU")
    with tempfile.TemporaryDirectory() as t:
        root = Path(t)
        texts = corpora(root)
        tok = root / "tok"
        build_tokenizer(defaults(TokenizerSettings, vocab_size=300), list(texts.values()), tok)
        tokens = {}
        for name, text in texts.items():
            tokens[name] = root / f"{name}.npy"
            tokenize_split(text, tok, tokens[name], root / f"{name}.json")
        result = {"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "torch": torch.__version__}
        result["cpu"] = lineage(root, tok, tokens, "cpu")
        if not args.cpu_only:
            result["cuda"] = lineage(root, tok, tokens, "cuda")
            result["same_acts_on_both_devices"] = compare_acts(root, list(result["cpu"]["models"]))
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
