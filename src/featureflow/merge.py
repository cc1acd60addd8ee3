"""Merging two models of the lineage: SLERP (default), linear, TIES; the t sweep and its equilibrium.

t semantics, everywhere in this package: t = 0 gives the FIRST model listed in ``merge:``, t = 1 the
second. SLERP follows mergekit: each tensor is one vector, the angle comes from the normalised
vectors, the raw tensors are interpolated, and nearly colinear pairs (|cos| > 0.9995) fall back to
linear interpolation.

Outputs::

    results/merge/{model}/sweep.csv     t, accuracy and loss on each input's own validation data
    results/merge/{model}/choice.json   chosen t, accuracies of merged/inputs/base, relative gains
    results/models/{model}/             the merged model (HF folder, tokenizer included)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featureflow.config import ConfigError

log = logging.getLogger(__name__)
Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MergeMethod:
    name: str
    fn: Callable[..., Tensors]
    needs_base: bool
    reference_url: str


METHODS: dict[str, MergeMethod] = {}


def register(method: MergeMethod) -> None:
    if method.name in METHODS:
        raise ValueError(f"merge method {method.name!r} is registered twice")
    METHODS[method.name] = method


def slerp_tensor(t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = 0.9995, eps: float = 1e-8) -> torch.Tensor:
    """Spherical interpolation of two tensors treated as single vectors (fp32 math, input dtype out)."""
    dtype = torch.float64 if v0.dtype == torch.float64 else torch.float32
    a, b = v0.to(dtype), v1.to(dtype)
    na, nb = torch.linalg.vector_norm(a), torch.linalg.vector_norm(b)
    dot = ((a / (na if na > eps else 1)) * (b / (nb if nb > eps else 1))).sum().clamp(-1, 1)
    if dot.abs() > dot_threshold:
        c0, c1 = 1 - t, t
    else:  # coefficients first: at t = 0 or 1 they are exactly 1 and 0, so the endpoints are the inputs
        theta = torch.acos(dot)
        c0, c1 = torch.sin((1 - t) * theta) / torch.sin(theta), torch.sin(t * theta) / torch.sin(theta)
    return (c0 * a + c1 * b).to(v0.dtype)


def slerp(first: Tensors, second: Tensors, t: float, base: Tensors | None = None) -> Tensors:
    return {k: slerp_tensor(t, first[k], second[k]) for k in first}


def linear(first: Tensors, second: Tensors, t: float, base: Tensors | None = None) -> Tensors:
    return {k: ((1 - t) * first[k].float() + t * second[k].float()).to(first[k].dtype) for k in first}


def ties(first: Tensors, second: Tensors, t: float, base: Tensors | None = None, density: float = 0.2) -> Tensors:
    """TIES-merging (Yadav et al. 2023) of two task vectors against their common ancestor.

    Each task vector keeps its top `density` share of entries by magnitude; signs are elected by the
    weighted sum (weights 1 - t and t); agreeing entries are averaged by weight and added to the base.
    """
    assert base is not None, "ties needs the common ancestor"
    out = {}
    for k in first:
        deltas, weights = [], torch.tensor([1 - t, t], dtype=torch.float32)
        for model in (first, second):
            d = (model[k].float() - base[k].float()).flatten()
            keep = max(1, int(round(density * d.numel())))
            threshold = d.abs().kthvalue(d.numel() - keep + 1).values if keep < d.numel() else -1.0
            deltas.append(torch.where(d.abs() >= threshold, d, torch.zeros_like(d)))
        stacked = torch.stack(deltas)  # [2, n]
        weighted = stacked * weights[:, None]
        sign = torch.sign(weighted.sum(0))
        agree = (torch.sign(stacked) == sign) & (stacked != 0)
        w_agree = (weights[:, None] * agree).sum(0)
        merged = (weighted * agree).sum(0) / torch.where(w_agree > 0, w_agree, torch.ones_like(w_agree))
        out[k] = (base[k].float() + merged.reshape(base[k].shape)).to(base[k].dtype)
    return out


register(MergeMethod("slerp", slerp, False, "https://en.wikipedia.org/wiki/Slerp"))
register(MergeMethod("linear", linear, False, "https://arxiv.org/abs/2203.05482"))
register(MergeMethod("ties", ties, True, "https://arxiv.org/abs/2306.01708"))


def merge_weights(method: str, first: Tensors, second: Tensors, t: float, base: Tensors | None = None) -> Tensors:
    """Merge two state dicts with the named method at fraction t (0 = first, 1 = second)."""
    if not 0.0 <= t <= 1.0:
        raise ConfigError(f"merge fraction t={t} is outside [0, 1]")
    if method not in METHODS:
        raise ConfigError(f"merge method {method!r} is not one of: {', '.join(METHODS)}")
    if METHODS[method].needs_base and base is None:
        raise ConfigError(f"merge method {method!r} needs the inputs' common ancestor as base")
    return METHODS[method].fn(first, second, t, base=base)


def check_mergeable(dirs: dict[str, str | Path]) -> None:
    """All models to merge must share architecture and tokenizer; one-line error naming them otherwise."""
    from featureflow.model import shape_of, tokenizer_digest

    names = list(dirs)
    ref = names[0]
    ref_shape = shape_of(json.loads((Path(dirs[ref]) / "config.json").read_text()))
    for other in names[1:]:
        shape = shape_of(json.loads((Path(dirs[other]) / "config.json").read_text()))
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

    return load_file(str(Path(model_dir) / "model.safetensors"))


def sweep_grid(step: float) -> np.ndarray:
    n = int(round(1 / step))
    return np.round(np.linspace(0.0, 1.0, n + 1), 6)


def run_sweep(first: str, second: str, dirs: dict[str, str | Path], own_validation: dict[str, list[str | Path]],
              method: str, base: str | None, grid_step: float, refine_step: float, max_tokens: int | None,
              batch_size: int = 64, device: str = "auto", threads: int = 2) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Accuracy of merged models along t on both inputs' own validation data, refined near the crossing.

    Returns the sweep rows and a summary with the base model's accuracies and the equilibrium t.
    """
    from featureflow.evaluate import blocks_from_files, next_token_metrics
    from featureflow.model import load_model
    from featureflow.runtime import pick_device

    torch.set_num_threads(threads)
    check_mergeable({n: dirs[n] for n in (first, second, base) if n})
    model = load_model(dirs[first]).to(pick_device(device))
    block = model.config.max_position_embeddings
    blocks = {n: blocks_from_files(own_validation[n], block, max_tokens) for n in (first, second)}
    w_first, w_second = load_weights(dirs[first]), load_weights(dirs[second])
    w_base = load_weights(dirs[base]) if base else None

    def score(weights: Tensors) -> dict[str, dict[str, float]]:
        model.load_state_dict(weights)
        return {n: next_token_metrics(model, blocks[n], batch_size) for n in (first, second)}

    def row(t: float, stage: str) -> dict[str, Any]:
        metrics = score(merge_weights(method, w_first, w_second, float(t), w_base))
        log.info("t=%.3f %s", t, "  ".join(f"{n}: acc {m['accuracy']:.4f}" for n, m in metrics.items()))
        return {"t": float(t), "stage": stage, **{f"{n}_{k}": metrics[n][k] for n in (first, second) for k in ("accuracy", "loss")}}

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
               "domains": {n: [str(f) for f in own_validation[n]] for n in (first, second)}, "eval_tokens_per_file": max_tokens}
    if base:
        model.load_state_dict(w_base)
        summary["base"] = {"model": base, **{n: m for n, m in score(w_base).items()}}
    if not crossed:
        log.warning("the accuracy curves of %s and %s do not cross; closest gap at t=%.3f", first, second, t_cross)
    return rows, summary


def write_sweep(rows: list[dict[str, Any]], summary: dict[str, Any], out_csv: str | Path, out_json: str | Path) -> None:
    import pandas as pd

    pd.DataFrame(rows).to_csv(out_csv, index=False, float_format="%.6f")
    Path(out_json).write_text(json.dumps(summary, indent=2) + "\n")


def build_merged(name: str, first: str, second: str, dirs: dict[str, str | Path], method: str, t_config: float | str,
                 sweep_json: str | Path, own_validation: dict[str, list[str | Path]], base: str | None, out_dir: str | Path,
                 choice_json: str | Path, max_tokens: int | None, batch_size: int = 64, device: str = "auto", threads: int = 2) -> dict[str, Any]:
    """Write the merged model at the configured or equilibrium t, and choice.json describing it."""
    from featureflow.evaluate import blocks_from_files, next_token_metrics
    from featureflow.model import load_model, save_model
    from featureflow.runtime import pick_device

    torch.set_num_threads(threads)
    check_mergeable({n: dirs[n] for n in (first, second, base) if n})
    sweep = json.loads(Path(sweep_json).read_text())
    t = float(sweep["equilibrium_t"]) if t_config == "auto" else float(t_config)
    weights = merge_weights(method, load_weights(dirs[first]), load_weights(dirs[second]), t,
                            load_weights(dirs[base]) if base else None)
    model = load_model(dirs[first])
    model.load_state_dict(weights)
    save_model(model, dirs[first], out_dir)

    model.to(pick_device(device))
    block = model.config.max_position_embeddings
    blocks = {n: blocks_from_files(own_validation[n], block, max_tokens) for n in (first, second)}
    merged = {n: next_token_metrics(model, blocks[n], batch_size) for n in (first, second)}
    inputs = {}
    for n in (first, second):
        model.load_state_dict(load_weights(dirs[n]))
        inputs[n] = next_token_metrics(model, blocks[n], batch_size)
    choice: dict[str, Any] = {
        "model": name, "method": method, "t": t, "t_from": "sweep equilibrium" if t_config == "auto" else "config",
        "t_semantics": f"t=0 is {first}, t=1 is {second}", "crossed": sweep["crossed"],
        "merged_accuracy": {n: merged[n]["accuracy"] for n in (first, second)},
        "input_accuracy": {n: inputs[n]["accuracy"] for n in (first, second)},
        "merged_vs_input": {n: merged[n]["accuracy"] / inputs[n]["accuracy"] - 1 for n in (first, second)},
    }
    if "base" in sweep:
        choice["base"] = sweep["base"]["model"]
        choice["base_accuracy"] = {n: sweep["base"][n]["accuracy"] for n in (first, second)}
        choice["merged_vs_base"] = {n: merged[n]["accuracy"] / sweep["base"][n]["accuracy"] - 1 for n in (first, second)}
    Path(choice_json).write_text(json.dumps(choice, indent=2) + "\n")
    log.info("%s: %s at t=%.4f -> %s", name, method, t, choice["merged_accuracy"])
    return choice
