"""The t sweep of a merged model (Figure 5), its accuracy equilibrium, and the merged model itself.

Outputs::

    results/merge/{model}/sweep.csv, sweep.json   t, accuracy and loss on each input's own validation data
    results/merge/{model}/choice.json             chosen t, accuracies of merged/inputs/base, relative gains
    results/lm/{model}/                           the merged model (HF folder, tokenizer included)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featureflow.config import ConfigError
from featureflow.merge.methods import Tensors, merge_weights
from featureflow.paths import MODEL_CONFIG, MODEL_WEIGHTS
from featureflow.runtime import pick_device
from featureflow.settings import MergeSettings, Resources

log = logging.getLogger(__name__)


def check_mergeable(dirs: dict[str, str | Path]) -> None:
    """All models to merge must share architecture and tokenizer; one-line error naming them otherwise."""
    from featureflow.lm import shape_of, tokenizer_digest

    names = list(dirs)
    ref = names[0]
    ref_shape = shape_of(json.loads((Path(dirs[ref]) / MODEL_CONFIG).read_text()))
    for other in names[1:]:
        shape = shape_of(json.loads((Path(dirs[other]) / MODEL_CONFIG).read_text()))
        diff = [f"{k} {ref_shape[k]} vs {shape[k]}" for k in ref_shape if ref_shape[k] != shape[k]]
        if diff:
            raise ConfigError(f"cannot merge '{ref}' and '{other}': architectures differ ({', '.join(diff)})")
        if tokenizer_digest(dirs[ref]) != tokenizer_digest(dirs[other]):
            raise ConfigError(f"cannot merge '{ref}' and '{other}': their tokenizers differ")


def find_equilibrium(ts: np.ndarray, acc_first: np.ndarray, acc_second: np.ndarray) -> tuple[float, bool]:
    """t where the two accuracy curves cross (linear interpolation between grid points).

    Returns (t, True) at the first sign change of acc_first - acc_second along t, or
    (t of the smallest gap, False) when the curves never cross.
    """
    order = np.argsort(ts)
    ts, diff = np.asarray(ts)[order], (np.asarray(acc_first) - np.asarray(acc_second))[order]
    for i in range(len(ts)):
        if diff[i] == 0:
            return float(ts[i]), True
        if i + 1 < len(ts) and diff[i] * diff[i + 1] < 0:
            frac = diff[i] / (diff[i] - diff[i + 1])
            return float(ts[i] + frac * (ts[i + 1] - ts[i])), True
    return float(ts[np.argmin(np.abs(diff))]), False


def load_weights(model_dir: str | Path) -> Tensors:
    from safetensors.torch import load_file

    return load_file(str(Path(model_dir) / MODEL_WEIGHTS))


def load_into(model: torch.nn.Module, weights: Tensors) -> None:
    """`model.load_state_dict(weights)`, strict but for a tied unembedding: a folder of a model with tied
    embeddings stores the matrix once (as ``save_pretrained`` writes it), and the unembedding, which shares
    the embedding's storage, takes the loaded values with it."""
    missing, unexpected = model.load_state_dict(weights, strict=False)
    params = model.state_dict(keep_vars=True)
    loaded = {params[k].data_ptr() for k in weights if k in params}
    untied = [k for k in missing if params[k].data_ptr() not in loaded]
    if unexpected or untied:
        raise RuntimeError(f"weights do not fit {type(model).__name__}: missing {untied}, unexpected {unexpected}")


def sweep_grid(step: float) -> np.ndarray:
    n = int(round(1 / step))
    return np.round(np.linspace(0.0, 1.0, n + 1), 6)


@dataclass(frozen=True)
class MergeSpec:
    """One merged model as the plan describes it: its inputs, method, t, and where their files are."""

    first: str
    second: str
    base: str | None                        # the inputs' nearest common ancestor
    method: str
    t: float | str                          # a fraction, or "auto" (the sweep's equilibrium)
    dirs: dict[str, str]                    # model folder of each input (and of the base)
    own_validation: dict[str, list[str]]    # each input's own validation token files
    block_size: int | None = None           # evaluation block (the lineage's context); None: the model's positions

    @property
    def inputs(self) -> tuple[str, str]:
        return self.first, self.second


def _setup(spec: MergeSpec, eval_tokens: int | None, resources: Resources,
           saves: bool = False) -> tuple[torch.nn.Module, dict[str, np.ndarray]]:
    """The first input's model on the job's device, and each input's validation blocks.

    `saves`: the job writes the model, so its folder must be one that `featureflow.lm.save_model` can write again."""
    from featureflow import lm  # its names load lazily: load_model imports transformers' model classes
    from featureflow.context import check_model_context, max_positions
    from featureflow.data import blocks_from_files

    torch.set_num_threads(resources.threads)
    check_mergeable({n: spec.dirs[n] for n in (spec.first, spec.second, spec.base) if n})
    model = (lm.load_for_training if saves else lm.load_for_inference)(spec.dirs[spec.first]).to(pick_device(resources.device))
    block = spec.block_size or max_positions(model.config)
    check_model_context(model.config, block, spec.first)
    return model, {n: blocks_from_files(spec.own_validation[n], block, eval_tokens) for n in spec.inputs}


def run_sweep(spec: MergeSpec, settings: MergeSettings, batch_size: int,
              resources: Resources) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Accuracy of merged models along t on both inputs' own validation data, refined near the crossing.

    Returns the sweep rows and a summary with the base model's accuracies and the equilibrium t.
    """
    from featureflow.lm import next_token_metrics

    first, second, base, method = spec.first, spec.second, spec.base, spec.method
    model, blocks = _setup(spec, settings.eval_tokens, resources)
    w_first, w_second = load_weights(spec.dirs[first]), load_weights(spec.dirs[second])
    w_base = load_weights(spec.dirs[base]) if base else None

    def score(weights: Tensors) -> dict[str, dict[str, float]]:
        load_into(model, weights)
        return {n: next_token_metrics(model, blocks[n], batch_size) for n in (first, second)}

    def row(t: float, stage: str) -> dict[str, Any]:
        metrics = score(merge_weights(method, w_first, w_second, float(t), w_base))
        log.info("t=%.3f %s", t, "  ".join(f"{n}: acc {m['accuracy']:.4f}" for n, m in metrics.items()))
        return {"t": float(t), "stage": stage, **{f"{n}_{k}": metrics[n][k] for n in (first, second) for k in ("accuracy", "loss")}}

    grid_step, refine_step = settings.grid_step, settings.refine_step
    rows = [row(t, "grid") for t in sweep_grid(grid_step)]
    acc = lambda rs, n: np.array([r[f"{n}_accuracy"] for r in rs])  # noqa: E731
    ts = np.array([r["t"] for r in rows])
    t_cross, crossed = find_equilibrium(ts, acc(rows, first), acc(rows, second))
    if crossed and refine_step < grid_step:
        lo, hi = ts[ts <= t_cross].max(), ts[ts >= t_cross].min()
        fine = [t for t in np.round(np.arange(lo, hi + 1e-9, refine_step), 6) if not np.isclose(ts, t).any()]
        rows += [row(t, "refine") for t in fine]
        rows.sort(key=lambda r: r["t"])
        ts = np.array([r["t"] for r in rows])
        t_cross, crossed = find_equilibrium(ts, acc(rows, first), acc(rows, second))
    summary = {"first": first, "second": second, "method": method, "equilibrium_t": t_cross, "crossed": crossed,
               "domains": {n: [str(f) for f in spec.own_validation[n]] for n in (first, second)},
               "eval_tokens_per_file": settings.eval_tokens}
    if base:
        load_into(model, w_base)
        summary["base"] = {"model": base, **{n: m for n, m in score(w_base).items()}}
    if not crossed:
        log.warning("the accuracy curves of %s and %s do not cross; closest gap at t=%.3f", first, second, t_cross)
    return rows, summary


def write_sweep(rows: list[dict[str, Any]], summary: dict[str, Any], out_csv: str | Path, out_json: str | Path) -> None:
    import pandas as pd

    pd.DataFrame(rows).to_csv(out_csv, index=False, float_format="%.6f")
    Path(out_json).write_text(json.dumps(summary, indent=2) + "\n")


@dataclass(frozen=True)
class MergedFiles:
    """The merge job's paths: the sweep summary in, the merged model folder and choice.json out."""

    sweep_json: str | Path
    out_dir: str | Path
    choice_json: str | Path


def build_merged(name: str, spec: MergeSpec, files: MergedFiles, settings: MergeSettings, batch_size: int,
                 resources: Resources) -> dict[str, Any]:
    """Write the merged model at the configured or equilibrium t to `files.out_dir`, and choice.json describing it."""
    from featureflow.lm import next_token_metrics, save_model

    first, second, base, method, dirs = spec.first, spec.second, spec.base, spec.method, spec.dirs
    model, blocks = _setup(spec, settings.eval_tokens, resources, saves=True)
    sweep = json.loads(Path(files.sweep_json).read_text())
    t = float(sweep["equilibrium_t"]) if spec.t == "auto" else float(spec.t)
    weights = merge_weights(method, load_weights(dirs[first]), load_weights(dirs[second]), t,
                            load_weights(dirs[base]) if base else None)
    load_into(model, weights)
    model.to("cpu")
    save_model(model, dirs[first], files.out_dir)

    model.to(pick_device(resources.device))
    merged = {n: next_token_metrics(model, blocks[n], batch_size) for n in (first, second)}
    inputs = {}
    for n in (first, second):
        load_into(model, load_weights(dirs[n]))
        inputs[n] = next_token_metrics(model, blocks[n], batch_size)
    choice: dict[str, Any] = {
        "model": name, "method": method, "t": t, "t_from": "sweep equilibrium" if spec.t == "auto" else "config",
        "t_semantics": f"t=0 is {first}, t=1 is {second}", "crossed": sweep["crossed"],
        "merged_accuracy": {n: merged[n]["accuracy"] for n in (first, second)},
        "input_accuracy": {n: inputs[n]["accuracy"] for n in (first, second)},
        "merged_vs_input": {n: merged[n]["accuracy"] / inputs[n]["accuracy"] - 1 for n in (first, second)},
    }
    if "base" in sweep:
        choice["base"] = sweep["base"]["model"]
        choice["base_accuracy"] = {n: sweep["base"][n]["accuracy"] for n in (first, second)}
        choice["merged_vs_base"] = {n: merged[n]["accuracy"] / sweep["base"][n]["accuracy"] - 1 for n in (first, second)}
    Path(files.choice_json).write_text(json.dumps(choice, indent=2) + "\n")
    log.info("%s: %s at t=%.4f -> %s", name, method, t, choice["merged_accuracy"])
    return choice
