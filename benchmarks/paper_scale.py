"""Every GPU stage of the pipeline at the paper's sizes, measured on a fraction of its work and extrapolated.

The stage functions are called as the Snakemake rules call them (settings from the schema defaults
and config/paper.yaml, `Resources(device, threads, compile)` of the rule's job class) on random token ids of
the paper's vocabulary (32000; throughput does not depend on the text):

    LM pre-training       train_model, paper shape, batch 64 x 256     -> 4 epochs of 335.6M tokens
    LM fine-tunes         train_model from the base folder (lm.finetune) -> 1 epoch of both fine-tune corpora
    LM evaluation         evaluate_model, 4 validation corpora          -> 4 models x 4 corpora x lm.eval_tokens
    merge sweep           run_sweep (SLERP + both validation sets)      -> 21 grid + 4 refine + 1 base points
    merged model          build_merged                                  -> once
    SAE training          train_sae, 1024 x 16384, 128 x 24-token blocks -> 15M tokens x 4 models
    SAE evaluation        evaluate_sae on held-out blocks               -> sae.eval_tokens x 4 models
    feature activations   compute_feature_acts on a common sample       -> 3M positions x 4 models
    correlation           correlate_edge (cuSPARSE float64 on CUDA)     -> 16384 x 16384 over 3M positions x 4 edges
    job start-up          python + imports + device init, per job       -> 25 GPU jobs

The token files hold random ids with Zipf-like frequencies (a unigram the models learn in a few
steps, so that accuracies are not zero: build_merged divides by them). Rates are steady-state:
the LM's from train_log.csv rows (elapsed_s) between two late log steps (compilation and the
first steps excluded), the others from the difference of two runs of different size after a
warm-up call. A stage's extrapolated time adds, per Snakemake job, the fixed cost of its first
(cold) call: loading, statistics, compilation. The SAE used for feature activations is the trained
one with its encoder bias shifted to the paper's L0 (~32), since the cost grows with the density.
Writes benchmarks/results/paper_scale_<device>.json (every raw measurement, the device, torch,
whether torch.compile was on, peak GPU memory per stage) and prints the table. At scale 1 it
holds a few GB of RAM and of GPU memory.

    .venv/bin/python benchmarks/paper_scale.py                 # CUDA when present; ~3-4 min on an H100/H200
    .venv/bin/python benchmarks/paper_scale.py --scale 2       # measure twice as much work per stage
    .venv/bin/python benchmarks/paper_scale.py --smoke --device cpu --out /tmp/paper_scale_smoke.json
                                                               # tiny shapes, same code paths (< 1 min on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # the stages' progress bars; before tqdm is imported

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(HERE))

from correlation import synthetic  # noqa: E402  (benchmarks/correlation.py: paper-like sparse activations)

from featureflow.data import build_tokenizer  # noqa: E402
from featureflow.data.tokens import token_dtype  # noqa: E402
from featureflow.flow import FeatureSource, compute_feature_acts, correlate_edge, draw_common_sample, load_acts, save_acts, save_sample  # noqa: E402
from featureflow.lm import ParentModel, TrainFiles, ValidationSet, evaluate_model, load_model, train_model  # noqa: E402
from featureflow.merge import MergedFiles, MergeSpec, build_merged, run_sweep  # noqa: E402
from featureflow.merge.sweep import sweep_grid  # noqa: E402
from featureflow.runtime import pick_device, use_compile  # noqa: E402
from featureflow.sae import SAEFiles, evaluate_sae, held_out_blocks, load_sae_weights, mlp_hook_post, train_sae  # noqa: E402
from featureflow.sae.model import SAE_WEIGHTS  # noqa: E402
from featureflow.settings import (  # noqa: E402
    ActsSettings,
    CorrelationSettings,
    JobClass,
    LMSettings,
    MergeSettings,
    Resources,
    SAESettings,
    TokenizerSettings,
    defaults,
    from_block,
)

PAPER_CONFIG = REPO / "config" / "paper.yaml"
# What the paper states (Horn & Elliott; /work/shared/paper): section 3 and footnotes 3, 7, Limitations.
PAPER = {
    "base_corpus_tokens": 335.6e6,   # footnote 3: "335.6M tokens in total, according to the model tokenizer"
    "all_tokens_upper": 0.5e9,       # Limitations: "just under half a billion tokens"
    "lm_hours_each": 10.0,           # section 3: "Each language model ... can be trained in 10 hours ... NVIDIA A100 40GB"
    "sae_hours_each": 8.0,           # section 3: "... and sparse auto-encoder ... 8 hours"
    "models": 4,                     # BabyPython, Lua, TinyStories, LuaStories (Figure 1)
    "edges": ["babypython->lua", "babypython->tinystories", "lua->luastories", "tinystories->luastories"],
}
# The paper does not give the Lua and TinyStories corpus sizes. Estimate (labelled as such in the JSON):
# everything left of "just under half a billion tokens" after the base corpus, i.e. an upper bound.
FINETUNE_TOKENS_ESTIMATE = PAPER["all_tokens_upper"] - PAPER["base_corpus_tokens"]
CORPORA = ("english", "python", "lua", "stories")
# GPU jobs of the paper DAG: train 3, evaluate 4, merge_sweep 1, merge 1, sae 4, sae_eval 4, feature_acts 4, correlate 4
GPU_JOBS = 25
TARGET_L0 = 32  # Appendix B: "mean L0 norm between 25-35"


@dataclass(frozen=True)
class Sizes:
    """How much of each stage's work is measured (the shapes are the paper's unless `smoke`)."""

    arch: dict[str, int]
    vocab: int
    expansion_factor: int
    base_steps: int
    base_log_every: int
    finetune_steps: int
    finetune_log_every: int
    checkpoint_every: int | None      # LM; None: the paper config's
    eval_tokens: int                  # LM evaluation and merge sweep, per validation corpus
    merge_grids: tuple[float, float]  # grid steps of the small and the large sweep (no refinement)
    sae_buffer_tokens: int | None     # None: the schema default
    sae_warmup_steps: int             # steps of the SAE warm-up run
    sae_chunks: tuple[int, int]       # activation chunks of the small and the large SAE run
    sae_eval_tokens: int
    acts_positions: tuple[int, int, int]  # warm-up, small, large sample
    corr_features: int
    corr_positions: tuple[int, int, int]  # warm-up, small, large


def blocks_of(n: float, context: int) -> int:
    """`n` rounded down to whole blocks of `context` (at least one)."""
    return max(context, int(n) // context * context)


def sizes(smoke: bool, scale: float, paper: dict[str, Any]) -> Sizes:
    """What to measure: tens of seconds per stage on an H100/H200 at scale 1; tiny shapes for --smoke."""
    ctx = paper["acts"]["context_size"]
    full_acts = paper["acts"]["tokens"]
    if smoke:
        return Sizes(arch={"d_model": 64, "d_mlp": 128, "n_heads": 4, "n_layers": 1, "block_size": 32}, vocab=1024,
                     expansion_factor=4, base_steps=max(8, round(30 * scale)), base_log_every=3,
                     finetune_steps=max(8, round(16 * scale)), finetune_log_every=2, checkpoint_every=20, eval_tokens=4096,
                     merge_grids=(0.5, 0.2), sae_buffer_tokens=6 * 128 * ctx, sae_warmup_steps=3, sae_chunks=(1, 3),
                     sae_eval_tokens=4096, acts_positions=(20 * ctx, blocks_of(5000 * scale, ctx), blocks_of(20000 * scale, ctx)),
                     corr_features=512, corr_positions=(100 * ctx, blocks_of(12000 * scale, ctx), blocks_of(48000 * scale, ctx)))
    base_steps = max(40, round(1100 * scale))  # >= 1000 at scale 1: one checkpoint (every 1000 steps) in the timed window
    ft_steps = max(40, round(300 * scale))
    small_chunks = max(1, round(scale))
    acts_big = blocks_of(min(full_acts, 1_000_000 * scale), ctx)
    corr_big = blocks_of(min(full_acts, 1_000_000 * scale), ctx)
    return Sizes(arch=dict(paper["lm"]["architecture"]), vocab=32000, expansion_factor=paper["sae"]["expansion_factor"],
                 base_steps=base_steps, base_log_every=max(1, base_steps // 22), finetune_steps=ft_steps,
                 finetune_log_every=max(1, ft_steps // 12), checkpoint_every=None,
                 eval_tokens=min(paper["lm"]["eval_tokens"], max(4096, round(paper["lm"]["eval_tokens"] * scale))),
                 merge_grids=(0.5, 0.2), sae_buffer_tokens=None, sae_warmup_steps=20,
                 sae_chunks=(small_chunks, max(small_chunks + 1, round(3 * scale))),
                 sae_eval_tokens=paper["sae"].get("eval_tokens", 200_000),
                 acts_positions=(64 * ctx, blocks_of(acts_big / 4, ctx), acts_big),
                 corr_features=paper["sae"]["expansion_factor"] * paper["lm"]["architecture"]["d_mlp"],
                 corr_positions=(100 * ctx, blocks_of(corr_big / 4, ctx), corr_big))


@dataclass
class Row:
    """One stage: its measured rate, the extrapolated time of the paper's budget, and the raw numbers."""

    stage: str
    unit: str
    rate: float
    minutes: float
    paper_hours: float | None
    budget: str
    raw: dict[str, Any]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(device: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> tuple[Any, float]:
    """(fn's result, wall seconds), the device synchronised at both ends."""
    sync(device)
    t = time.perf_counter()
    out = fn(*args, **kw)
    sync(device)
    return out, time.perf_counter() - t


def peak_gb(device: str) -> float | None:
    """Peak GPU memory since the last call (GiB), or None on a CPU."""
    if device != "cuda":
        return None
    peak = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return round(peak, 2)


def two_point(n_small: float, t_small: float, n_big: float, t_big: float) -> tuple[float, float, str]:
    """(fixed seconds, seconds per unit, how) of t = fixed + n * per_unit through two measurements.

    When the larger run was not slower (too little work measured: raise --scale), the larger run's
    mean cost per unit stands in, with no fixed part: an upper bound.
    """
    per_unit = (t_big - t_small) / (n_big - n_small)
    if per_unit <= 0:
        print(f"warning: the larger run ({n_big:g} in {t_big:.2f} s) was not slower than the smaller ({n_small:g} in {t_small:.2f} s);"
              " using the larger run's mean cost (measure more work: --scale)", file=sys.stderr)
        return 0.0, t_big / n_big, "mean of the larger run (the two-point fit failed)"
    return t_small - n_small * per_unit, per_unit, "two-point fit"


def compiled_runs(rows: list[Row]) -> dict[str, Any]:
    """The `compiled` flag each training run recorded (train_meta.json, featureflow_sae.json)."""
    out: dict[str, Any] = {}
    for r in rows:
        for key, value in r.raw.items():
            if isinstance(value, dict) and "compiled" in value:
                out[key] = value["compiled"]
        for run in r.raw.get("runs", []):
            if "compiled" in run:
                out[f"sae_{run['run']}"] = run["compiled"]
    return out


def device_slug(device: str) -> str:
    if device != "cuda":
        return "cpu"
    name = torch.cuda.get_device_name().lower().replace("nvidia", "")
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "cuda"


def job_class(paper: dict[str, Any], name: str) -> JobClass:
    """Job class `name` of config/paper.yaml over the schema defaults (compile: "auto" unless it says otherwise)."""
    return defaults(JobClass, **paper["resources"][name])


def resources(paper: dict[str, Any], name: str, device: str) -> Resources:
    """What a job of class `name` runs with, as `stage.job_resources` builds it; threads capped at this machine's cores."""
    jc = job_class(paper, name)
    return Resources(device, max(1, min(os.cpu_count() or 1, jc.threads)), compile=jc.compile, tensorboard=False)


# --- data ---------------------------------------------------------------------------------------------


def make_data(root: Path, sz: Sizes, batch: int) -> dict[str, Any]:
    """A tokenizer folder of the paper's vocabulary size and random token files (train/validation per corpus)."""
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "local", "function", "end", "once", "upon", "time", "def", "return"]
    text = root / "text.txt"
    text.write_text("\n\x1e\n".join(" ".join(rng.choice(words, 60)) for _ in range(200)))
    tok = root / "tok"
    build_tokenizer(defaults(TokenizerSettings, kind="bpe", vocab_size=300), [text], tok)
    # train_model sizes the embedding from tokenizer_meta.json: the paper's vocabulary, whatever this BPE holds
    meta_path = tok / "tokenizer_meta.json"
    meta = json.loads(meta_path.read_text())
    meta["vocab_size"] = sz.vocab
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    dtype = token_dtype(sz.vocab)
    block = sz.arch["block_size"]

    # Zipf-like token frequencies, one id as frequent as a separator: a unigram the LMs learn within a few steps,
    # so that next-token accuracies are not zero (build_merged divides by them); the speed does not depend on it.
    freq = 1.0 / np.arange(1, sz.vocab + 1)
    freq = 0.8 * freq / freq.sum()
    freq[meta["eot_id"]] += 0.2
    cdf = np.cumsum(freq)

    def write(path: Path, n: int) -> str:
        ids = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1]), sz.vocab - 1)
        np.save(path, ids.astype(dtype))
        return str(path)

    files = {"tok": tok,
             "mixture": write(root / "mixture_base.npy", (sz.base_steps * batch + 1) * block),
             "train": {c: write(root / f"{c}_train.npy", (sz.finetune_steps * batch + 1) * block) for c in CORPORA},
             "validation": {c: write(root / f"{c}_validation.npy", max(sz.eval_tokens, sz.sae_eval_tokens) + block) for c in CORPORA}}
    return files


# --- language models ------------------------------------------------------------------------------------


def lm_settings(paper: dict[str, Any], sz: Sizes, base_tokens: int, ft_tokens: int) -> LMSettings:
    """The `lm` block of config/paper.yaml over the schema defaults, with measurement budgets and logging."""
    block = asdict(defaults(LMSettings))
    block["architecture"].update(sz.arch)
    for kind, tokens in (("scratch", base_tokens), ("finetune", ft_tokens)):
        block[kind].update(paper["lm"][kind])
        block[kind]["tokens"] = tokens
    block.update({k: v for k, v in paper["lm"].items() if k not in ("architecture", "scratch", "finetune")})
    if sz.checkpoint_every is not None:
        block["checkpoint_every"] = sz.checkpoint_every
    return from_block(LMSettings, block)


def log_rate(train_log: Path) -> dict[str, Any]:
    """Steady tokens/s from train_log.csv: from the first row at or past half the steps to the last row."""
    with open(train_log) as fh:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    last = rows[-1]
    first = next(r for r in rows if r["step"] >= last["step"] / 2)
    if first is last:
        first = rows[-2]
    tokens, seconds = last["tokens"] - first["tokens"], last["elapsed_s"] - first["elapsed_s"]
    return {"from_step": int(first["step"]), "to_step": int(last["step"]), "tokens": int(tokens), "seconds": round(seconds, 3),
            "tok_s": tokens / seconds, "log_rows": len(rows)}


def run_train(name: str, mixture: str, data: dict[str, Any], root: Path, lm: LMSettings, fine_tune: bool, log_every: int,
              device: str, res: Resources, parent_dir: Path | None = None) -> dict[str, Any]:
    """One train job (as rule `train` runs it); its steady rate from the log and its fixed cost."""
    out = root / name
    job = dataclasses.replace(lm, log_every=log_every).train_job(fine_tune)
    files = TrainFiles(mixture_npy=mixture, tokenizer_dir=data["tok"], out_dir=out, train_log=root / f"{name}_log.csv",
                       train_meta=root / f"{name}_meta.json", ckpt_dir=root / f"ckpt_{name}")
    meta, wall = timed(device, train_model, name=name, files=files, settings=job, seed=0, resources=res,
                       parent=ParentModel(model_dir=parent_dir, name="base") if parent_dir else None)
    rate = log_rate(root / f"{name}_log.csv")
    return {"dir": str(out), "compiled": meta.get("compiled"), "wall_s": round(wall, 3), "train_seconds": meta["train_seconds"],
            "steps": meta["steps"], "tokens_seen": meta["tokens_seen"], "window": rate, "tok_s": round(rate["tok_s"], 1),
            "fixed_s": round(max(0.0, wall - meta["tokens_seen"] / rate["tok_s"]), 3), "peak_gpu_gb": peak_gb(device),
            "settings": asdict(job.schedule), "resources": asdict(res)}


def measure_lm(paper: dict[str, Any], sz: Sizes, data: dict[str, Any], root: Path, device: str) -> tuple[list[Row], dict[str, str]]:
    block, batch = sz.arch["block_size"], paper["lm"]["scratch"]["batch_size"]
    ft_batch = paper["lm"]["finetune"]["batch_size"]
    lm = lm_settings(paper, sz, sz.base_steps * batch * block, sz.finetune_steps * ft_batch * block)
    res = resources(paper, "train", device)
    base = run_train("base", data["mixture"], data, root, lm, False, sz.base_log_every, device, res)
    fts = {name: run_train(name, data["train"][corpus], data, root, lm, True, sz.finetune_log_every, device, res,
                          parent_dir=Path(base["dir"]))
           for name, corpus in (("lua", "lua"), ("tinystories", "stories"))}
    base_budget = paper["lm"]["scratch"]["epochs"] * PAPER["base_corpus_tokens"]
    ft_budget = paper["lm"]["finetune"]["epochs"] * FINETUNE_TOKENS_ESTIMATE
    ft_rate = float(np.mean([f["tok_s"] for f in fts.values()]))
    # each fine-tune is a fresh job: it compiles from cold as the base model did, not with this process' warm caches
    ft_fixed = sum(max(f["fixed_s"], base["fixed_s"]) for f in fts.values())
    rows = [
        Row("LM pre-training (base)", "tok/s", base["tok_s"], (base["fixed_s"] + base_budget / base["tok_s"]) / 60,
            PAPER["lm_hours_each"], f"{paper['lm']['scratch']['epochs']} epochs x 335.6M tokens (paper fn. 3)",
            {"base": base, "budget_tokens": base_budget,
             "note": "checkpoints every lm.checkpoint_every steps are in the timed window when it spans one (scale >= ~0.9)"}),
        Row("LM fine-tunes (Lua + TinyStories)", "tok/s", ft_rate,
            (ft_fixed + ft_budget / ft_rate) / 60, 2 * PAPER["lm_hours_each"],
            f"{paper['lm']['finetune']['epochs']} epoch x {ft_budget / 1e6:.1f}M tokens (ESTIMATE)",
            {**fts, "budget_tokens": ft_budget, "budget_is_estimate": True, "fixed_s_used": round(ft_fixed, 3),
             "fixed_note": "per fine-tune job the larger of its own fixed cost and the base model's (a fresh job compiles cold)",
             "budget_note": "the paper does not state the Lua or TinyStories corpus sizes; estimate = 'just under half a billion "
                            "tokens' (Limitations) - 335.6M (fn. 3) for both fine-tunes together, an upper bound",
             "paper_hours_note": "the paper's 10 h 'per language model' applied to each fine-tune"}),
    ]
    return rows, {"base": base["dir"], "lua": fts["lua"]["dir"], "tinystories": fts["tinystories"]["dir"]}


def measure_evaluate(paper: dict[str, Any], sz: Sizes, data: dict[str, Any], models: dict[str, str], root: Path, device: str) -> Row:
    """Rule `evaluate`: one model on every corpus' validation tokens (a warm call first, then the timed one)."""
    res = resources(paper, "gpu_eval", device)
    batch = defaults(LMSettings).eval_batch_size
    block = sz.arch["block_size"]
    warm = ValidationSet({c: data["validation"][c] for c in CORPORA[:1]}, block, 4 * block)
    evaluate_model(models["base"], warm, root / "eval_warm.json", batch, res)
    peak_gb(device)
    _, wall = timed(device, evaluate_model, models["lua"], ValidationSet(data["validation"], block, sz.eval_tokens), root / "eval.json",
                    batch, res)
    tokens = len(CORPORA) * sz.eval_tokens
    paper_tokens = PAPER["models"] * len(CORPORA) * paper["lm"]["eval_tokens"]
    return Row("LM evaluation", "tok/s", tokens / wall, PAPER["models"] * wall * paper["lm"]["eval_tokens"] / sz.eval_tokens / 60, None,
               f"{PAPER['models']} models x {len(CORPORA)} corpora x {paper['lm']['eval_tokens'] / 1e6:g}M tokens",
               {"wall_s": round(wall, 3), "eval_tokens_per_corpus": sz.eval_tokens, "corpora": len(CORPORA), "batch_size": batch,
                "budget_tokens": paper_tokens, "peak_gpu_gb": peak_gb(device),
                "note": "the timed call's wall (model load included) scaled by the paper's eval_tokens, per model"})


def measure_merge(paper: dict[str, Any], sz: Sizes, data: dict[str, Any], models: dict[str, str], root: Path,
                  device: str) -> list[Row]:
    """Rules `merge_sweep` and `merge`: per-point cost from two sweeps of different length, then build_merged."""
    res = resources(paper, "merge", device)
    batch = defaults(LMSettings).eval_batch_size
    spec = MergeSpec("lua", "tinystories", "base", paper["models"]["luastories"]["method"], "auto", dict(models),
                     {"lua": [data["validation"]["lua"]], "tinystories": [data["validation"]["stories"]]})
    runs = []
    summary: dict[str, Any] = {}
    for grid in sz.merge_grids:
        merge = defaults(MergeSettings, **{**paper["merge"], "grid_step": grid, "refine_step": grid, "eval_tokens": sz.eval_tokens})
        (rows, summary), wall = timed(device, run_sweep, spec, merge, batch, res)
        runs.append({"grid_step": grid, "points": len(rows) + ("base" in summary), "wall_s": round(wall, 3)})
    fixed, per_point, fit = two_point(runs[0]["points"], runs[0]["wall_s"], runs[1]["points"], runs[1]["wall_s"])
    eval_ratio = paper["merge"]["eval_tokens"] / sz.eval_tokens
    grid_step, refine_step = paper["merge"]["grid_step"], paper["merge"]["refine_step"]
    points = {"grid": len(sweep_grid(grid_step)), "refine": round(grid_step / refine_step) - 1, "base": 1}
    n_points = sum(points.values())
    sweep_s = fixed + n_points * per_point * eval_ratio
    sweep_json = root / "sweep.json"
    sweep_json.write_text(json.dumps(summary))
    merged_dir = root / "luastories"
    merge = defaults(MergeSettings, **{**paper["merge"], "eval_tokens": sz.eval_tokens})
    choice, merged_wall = timed(device, build_merged, name="luastories", spec=spec,
                                files=MergedFiles(sweep_json=sweep_json, out_dir=merged_dir, choice_json=root / "choice.json"),
                                settings=merge, batch_size=batch, resources=res)
    # build_merged: setup + one merge + 3 evaluations (merged and both inputs) on both validation sets; the
    # evaluations scale with eval_tokens (nothing to scale at the paper's eval_tokens)
    merged_s = merged_wall + 3 * per_point * (eval_ratio - 1)
    tokens_per_point = 2 * sz.eval_tokens
    rows = [
        Row("merge sweep", "points/s", 1 / per_point, sweep_s / 60, None,
            f"{n_points} points ({points['grid']} grid + {points['refine']} refine + base) x 2 x {paper['merge']['eval_tokens'] / 1e6:g}M "
            "tokens", {"runs": runs, "fit": fit, "fixed_s": round(fixed, 3), "per_point_s": round(per_point, 4), "points": points,
                       "eval_tokens_per_corpus_measured": sz.eval_tokens, "eval_tokens_per_corpus_paper": paper["merge"]["eval_tokens"],
                       "eval_tok_s": round(tokens_per_point / per_point, 1), "peak_gpu_gb": peak_gb(device),
                       "note": "a point = SLERP merge + accuracy on both inputs' validation sets; per-point time scaled by "
                               "paper/measured eval_tokens when they differ (merge cost scaled too: conservative)"}),
        Row("merged model", "s", merged_wall, merged_s / 60, None, "SLERP at t + 3 evaluations on both validation sets",
            {"wall_s": round(merged_wall, 3), "t": choice["t"],
             "note": "the measured call, its 3 evaluations scaled by paper/measured eval_tokens (the sweep's cost per point)",
             "peak_gpu_gb": peak_gb(device)}),
    ]
    return rows


# --- SAEs --------------------------------------------------------------------------------------------------


def sae_settings(paper: dict[str, Any], sz: Sizes, tokens: int) -> SAESettings:
    names = {f.name for f in dataclasses.fields(SAESettings)}
    over = {k: v for k, v in paper["sae"].items() if k in names}
    over.update(expansion_factor=sz.expansion_factor, tokens=tokens)
    if sz.sae_buffer_tokens is not None:
        over["buffer_tokens"] = sz.sae_buffer_tokens
    return defaults(SAESettings, **over)


def measure_sae(paper: dict[str, Any], sz: Sizes, data: dict[str, Any], models: dict[str, str], root: Path,
                device: str) -> tuple[list[Row], str]:
    """Rule `sae` (warm-up, then two runs of different length) and rule `sae_eval`."""
    res = resources(paper, "sae", device)
    files = [data["train"]["english"], data["train"]["python"]]  # the base model's lineage corpora (paper fn. 5)
    s = sae_settings(paper, sz, 1)
    batch_tokens = s.batch_blocks * s.context_size
    chunk_tokens = max(1, s.buffer_tokens // batch_tokens) * batch_tokens
    runs = []
    plan = (("warm-up", sz.sae_warmup_steps * batch_tokens), ("small", sz.sae_chunks[0] * chunk_tokens),
            ("large", sz.sae_chunks[1] * chunk_tokens))
    for label, tokens in plan:
        settings = sae_settings(paper, sz, tokens)
        out = root / f"sae_{label}"
        sae_files = SAEFiles(model_dir=models["base"], token_files=files, out_dir=out, train_log=root / f"sae_{label}_log.csv",
                             ckpt_dir=root / f"sae_ckpt_{label}")
        extra, wall = timed(device, train_sae, name="base", files=sae_files, settings=settings, seed=0, resources=res)
        with open(root / f"sae_{label}_log.csv") as fh:
            last = list(csv.DictReader(fh))[-1]
        runs.append({"run": label, "compiled": extra.get("compiled"), "tokens": extra["steps"] * batch_tokens, "steps": extra["steps"],
                     "wall_s": round(wall, 3), "train_seconds": extra["train_seconds"], "final_l0": float(last["l0"]), "dir": str(out),
                     "peak_gpu_gb": peak_gb(device)})
    fixed, per_token, fit = two_point(runs[1]["tokens"], runs[1]["wall_s"], runs[2]["tokens"], runs[2]["wall_s"])
    cold_fixed = max(fixed, runs[0]["wall_s"] - runs[0]["tokens"] * per_token)
    budget = paper["sae"]["tokens"]
    minutes = PAPER["models"] * (cold_fixed + budget * per_token) / 60
    train_row = Row("SAE training", "tok/s", 1 / per_token, minutes, PAPER["models"] * PAPER["sae_hours_each"],
                    f"{PAPER['models']} x {budget / 1e6:g}M tokens", {
                        "runs": runs, "fit": fit, "fixed_s": round(fixed, 3), "cold_fixed_s": round(cold_fixed, 3), "d_in": sz.arch["d_mlp"],
                        "d_sae": sz.arch["d_mlp"] * sz.expansion_factor, "batch_tokens": batch_tokens, "chunk_tokens": chunk_tokens,
                        "settings": asdict(settings), "resources": asdict(res),
                        "note": "rate from the difference of the small and large runs (whole activation chunks); each job adds the "
                                "fixed cost of the first (cold) call: LM load, statistics sample, compilation"})

    sae_dir = runs[2]["dir"]
    blocks = held_out_blocks([data["validation"]["english"], data["validation"]["python"]], sz.arch["block_size"], sz.sae_eval_tokens)
    eval_res = resources(paper, "gpu_eval", device)
    evaluate_sae(models["base"], sae_dir, blocks[:2], s.hook, eval_res)  # warm-up
    peak_gb(device)
    metrics, wall = timed(device, evaluate_sae, models["base"], sae_dir, blocks, s.hook, eval_res)
    eval_row = Row("SAE evaluation", "tok/s", blocks.size / wall, PAPER["models"] * wall / 60, None,
                   f"{PAPER['models']} x {sz.sae_eval_tokens / 1e3:g}k held-out tokens (sae.eval_tokens)",
                   {"wall_s": round(wall, 3), "tokens": int(blocks.size), "peak_gpu_gb": peak_gb(device),
                    "metrics": {k: metrics[k] for k in ("l0", "explained_variance", "dead_fraction") if k in metrics}})
    return [train_row, eval_row], sae_dir


@torch.no_grad()
def calibrate_sae(model_dir: str, sae_dir: str, out_dir: Path, token_file: str, hook: str, context: int, device: str) -> dict[str, float]:
    """A copy of the SAE whose encoder bias is shifted so that mean L0 is the paper's (~32) on a few blocks.

    A briefly trained SAE fires far more often than the paper's (L0 25-35), and the cost of the
    sparse activation files grows with L0; the shift makes the density realistic. Weights only.
    """
    shutil.copytree(sae_dir, out_dir)
    weights = load_sae_weights(sae_dir)
    model = load_model(model_dir).to(device).eval()
    ids = np.asarray(np.load(token_file, mmap_mode="r")[: 64 * context], dtype=np.int64).reshape(64, context)
    x = mlp_hook_post(model, torch.from_numpy(ids).to(device), hook).flatten(0, 1)
    w = {k: v.to(device) for k, v in weights.items()}
    pre = ((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]).cpu().numpy()
    k = pre.size - int(TARGET_L0 * pre.shape[0])
    shift = float(np.partition(pre.ravel(), k)[k])
    weights["b_enc"] = weights["b_enc"] - shift
    from safetensors.torch import save_file

    save_file({n: t.contiguous() for n, t in weights.items()}, str(out_dir / SAE_WEIGHTS))
    return {"l0_before": float((pre > 0).sum(1).mean()), "l0_after": float((pre > shift).sum(1).mean()), "b_enc_shift": shift}


def measure_acts(paper: dict[str, Any], sz: Sizes, data: dict[str, Any], models: dict[str, str], sae_dir: str, root: Path,
                 device: str) -> Row:
    """Rule `feature_acts` on common samples of three sizes (warm-up, small, large) with a realistic-density SAE."""
    res = resources(paper, "gpu_eval", device)
    acts = defaults(ActsSettings, **paper["acts"])
    hook = paper["sae"]["hook"]
    calibrated = root / "sae_calibrated"
    calibration = calibrate_sae(models["base"], sae_dir, calibrated, data["train"]["lua"], hook, acts.context_size, device)
    runs = []
    for label, n in zip(("warm-up", "small", "large"), sz.acts_positions, strict=True):
        sample = root / f"sample_{label}.npz"
        save_sample(draw_common_sample(dict(data["train"]), n, acts.context_size, 0), sample)
        out = root / f"acts_{label}.npz"
        source = FeatureSource(model_dir=models["base"], sae_dir=calibrated, hook_name=hook)
        _, wall = timed(device, compute_feature_acts, model="base", source=source, sample_npz=sample, out_npz=out,
                        batch_tokens=acts.batch_tokens, resources=res)
        matrix, _, _ = load_acts(out)
        runs.append({"run": label, "positions": matrix.shape[0], "wall_s": round(wall, 3), "mean_l0": matrix.nnz / matrix.shape[0],
                     "peak_gpu_gb": peak_gb(device)})
    fixed, per_pos, fit = two_point(runs[1]["positions"], runs[1]["wall_s"], runs[2]["positions"], runs[2]["wall_s"])
    cold_fixed = max(fixed, runs[0]["wall_s"] - runs[0]["positions"] * per_pos)
    return Row("feature activations", "pos/s", 1 / per_pos, PAPER["models"] * (cold_fixed + acts.tokens * per_pos) / 60, None,
               f"{PAPER['models']} x {acts.tokens / 1e6:g}M positions", {
                   "runs": runs, "fit": fit, "fixed_s": round(fixed, 3), "cold_fixed_s": round(cold_fixed, 3), "batch_tokens": acts.batch_tokens,
                   "calibration": calibration, "note": f"SAE encoder bias shifted to mean L0 ~{TARGET_L0} (paper: 25-35); see calibrate_sae"})


def measure_correlation(paper: dict[str, Any], sz: Sizes, root: Path, device: str) -> Row:
    """Rule `correlate` on synthetic paper-like activations (benchmarks/correlation.py), three sizes.

    On CUDA the numba CPU kernel is timed too (raw numbers only): config/paper.yaml leaves the
    cpu_eval class at the schema's device "cpu", so the workflow runs that one unless told otherwise.
    """
    settings = defaults(CorrelationSettings, **paper["correlation"])
    ctx = paper["acts"]["context_size"]
    mark = time.perf_counter()
    x, y = synthetic(sz.corr_positions[-1], sz.corr_features, 30.0, seed=0)
    gen = round(time.perf_counter() - mark, 2)
    inputs = []
    for label, n in zip(("warm-up", "small", "large"), sz.corr_positions, strict=True):
        sample = {"blocks": np.zeros((n // ctx, ctx), dtype=np.uint32), "digest": np.array(f"synthetic-{n}")}
        paths = (root / f"corr_{label}_a.npz", root / f"corr_{label}_b.npz")
        save_acts(x[:n], sample, "a", paths[0])
        save_acts(y[:n], sample, "b", paths[1])
        inputs.append((label, n, paths))
    n_paper = paper["acts"]["tokens"]
    edges = len(PAPER["edges"])

    def measure(on: str) -> dict[str, Any]:
        res = resources(paper, "cpu_eval", on)
        runs = []
        for label, n, (a, b) in inputs:
            _, wall = timed(on, correlate_edge, a, b, root / f"matches_{on}_{label}.npz", settings, res)
            runs.append({"run": label, "positions": n, "wall_s": round(wall, 3), "nnz_a": int(x[:n].nnz), "nnz_b": int(y[:n].nnz),
                         "peak_gpu_gb": peak_gb(on)})
        fixed, per_pos, fit = two_point(runs[1]["positions"], runs[1]["wall_s"], runs[2]["positions"], runs[2]["wall_s"])
        cold_fixed = max(fixed, runs[0]["wall_s"] - runs[0]["positions"] * per_pos)
        return {"backend": "torch-cuda (cuSPARSE, float64)" if on == "cuda" else f"numba-cpu ({res.threads} threads)", "runs": runs,
                "fit": fit, "fixed_s": round(fixed, 3), "cold_fixed_s": round(cold_fixed, 3), "per_pos_s": per_pos,
                "minutes": edges * (cold_fixed + n_paper * per_pos) / 60}

    primary = measure(device)
    raw = {**primary, "generate_s": gen, "edges": PAPER["edges"], "mean_l0": x.nnz / x.shape[0], "settings": asdict(settings),
           "note": "synthetic activations (log-normal feature densities, L0 ~30, half of B noisy copies of A); time = fixed + "
                   "positions x per-position cost, fitted on two sizes"}
    if device == "cuda":
        raw["numba_cpu"] = {**measure("cpu"), "note": "config/paper.yaml: resources.cpu_eval.device is the schema default 'cpu', so "
                                                      "rule correlate runs this path unless the config sets cuda/auto"}
    return Row("correlation", "pos/s", 1 / primary["per_pos_s"], primary["minutes"], None,
               f"{edges} edges x {sz.corr_features} x {sz.corr_features} features x {n_paper / 1e6:g}M positions", raw)


def measure_startup(device: str, repeats: int) -> Row:
    """Start-up of one stage job: python, the stage imports, the device's first operation."""
    code = ("import torch, featureflow.lm.train, featureflow.sae.train, featureflow.flow.feature_acts, featureflow.merge.sweep; "
            f"torch.zeros(1, device='{device}').sum().item()")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    walls = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        walls.append(time.perf_counter() - t)
    wall = min(walls)
    return Row("job start-up", "s/job", wall, GPU_JOBS * wall / 60, None, f"{GPU_JOBS} GPU jobs of the paper DAG",
               {"walls_s": [round(w, 3) for w in walls], "jobs": GPU_JOBS,
                "note": "python start, featureflow/torch/transformers imports and the first device op, per job (Snakemake's own "
                        "overhead not included)"})


# --- report ---------------------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    lines = [f"{'stage':<36} {'measured':>18} {'extrapolated min':>17} {'paper A100 h':>13}  budget"]
    for r in rows:
        measured = f"{r.rate:,.0f} {r.unit}" if r.rate >= 100 else f"{r.rate:.3g} {r.unit}"
        paper = f"{r.paper_hours:g}" if r.paper_hours is not None else "-"
        lines.append(f"{r.stage:<36} {measured:>18} {r.minutes:>17.2f} {paper:>13}  {r.budget}")
    total = sum(r.minutes for r in rows)
    reported = sum(r.paper_hours or 0 for r in rows)
    lines.append(f"{'sum':<36} {'':>18} {total:>17.2f} {reported:>13g}  (paper: LM 3 x 10 h + SAE 4 x 8 h; other stages not reported)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the work measured per stage (default: ~3-4 min on an H100)")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, same code paths (a quick check of the script)")
    ap.add_argument("--out", help="JSON path (default benchmarks/results/paper_scale_<device>[_smoke].json)")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    paper = yaml.safe_load(PAPER_CONFIG.read_text())
    sz = sizes(args.smoke, args.scale, paper)
    device = args.device
    logging.getLogger("featureflow.merge.sweep").setLevel(logging.ERROR)  # random tokens: the accuracy curves need not cross
    start = time.perf_counter()
    stage_s: dict[str, float] = {}
    errors: dict[str, str] = {}
    rows: list[Row] = []

    def stage(label: str, fn: Callable[..., Any], *a: Any) -> Any:
        """Run one measurement; a failure is recorded (the other stages still run) and gives None."""
        mark = time.perf_counter()
        try:
            out = fn(*a)
        except Exception:  # one failing stage must not lose the others' measurements
            errors[label] = traceback.format_exc()[-3000:]
            print(f"error in {label}:\n{errors[label]}", file=sys.stderr, flush=True)
            out = None
        stage_s[label] = round(time.perf_counter() - mark, 1)
        print(f"[{time.perf_counter() - start:6.0f} s] {label} {'failed' if out is None else 'done'}", file=sys.stderr, flush=True)
        return out

    def add(found: Row | list[Row] | None) -> None:
        if found is not None:
            rows.extend(found if isinstance(found, list) else [found])

    add(stage("start-up", measure_startup, device, 1 if args.smoke else 2))
    with tempfile.TemporaryDirectory(prefix="paper_scale_") as t:
        root = Path(t)
        data = stage("data", make_data, root, sz, paper["lm"]["scratch"]["batch_size"])
        lm = stage("lm", measure_lm, paper, sz, data, root, device) if data else None
        if lm:
            models = lm[1]
            add(lm[0])
            add(stage("evaluate", measure_evaluate, paper, sz, data, models, root, device))
            add(stage("merge", measure_merge, paper, sz, data, models, root, device))
            sae = stage("sae", measure_sae, paper, sz, data, models, root, device)
            if sae:
                add(sae[0])
                add(stage("feature_acts", measure_acts, paper, sz, data, models, sae[1], root, device))
        add(stage("correlation", measure_correlation, paper, sz, root, device))
    order = ["job start-up", "LM pre-training (base)", "LM fine-tunes (Lua + TinyStories)", "LM evaluation", "merge sweep",
             "merged model", "SAE training", "SAE evaluation", "feature activations", "correlation"]
    rows.sort(key=lambda r: order.index(r.stage))
    compile_setting = {name: resources(paper, name, device).compile for name in ("train", "sae")}
    total = sum(r.minutes for r in rows)
    result = {
        "device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "compile_setting": compile_setting,
        "compile_in_effect": {k: use_compile(v, pick_device(device)) for k, v in compile_setting.items()},
        "compiled_runs": compiled_runs(rows),
        "smoke": args.smoke, "scale": args.scale, "sizes": asdict(sz), "complete": not errors, "errors": errors,
        "total_extrapolated_minutes": round(total, 2), "target_minutes": 30, "within_target": not errors and total <= 30,
        "paper_reported_a100_hours": sum(r.paper_hours or 0 for r in rows),
        "paper": {**PAPER, "finetune_tokens_estimate": FINETUNE_TOKENS_ESTIMATE,
                  "finetune_tokens_note": "not stated in the paper: 'just under half a billion tokens' - 335.6M, an upper bound"},
        "stages": [{**asdict(r), "rate": round(r.rate, 3), "minutes": round(r.minutes, 3)} for r in rows],
        "script_seconds": {**stage_s, "total": round(time.perf_counter() - start, 1)},
    }
    if args.smoke:
        result["note"] = "smoke run: tiny shapes, the extrapolations are NOT paper-scale numbers"
    out = Path(args.out) if args.out else HERE / "results" / f"paper_scale_{device_slug(device)}{'_smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(table(rows))
    print(f"\n{result['device']}, torch {torch.__version__}, compile {result['compile_in_effect']}; "
          f"script {result['script_seconds']['total']:.0f} s; wrote {out}")
    if errors:
        raise SystemExit(f"failed stages (partial results written): {', '.join(errors)}")

if __name__ == "__main__":
    main()
