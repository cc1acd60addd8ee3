"""Features along the merge path: each parent's SAE applied to the model merged at every t of the sweep.

For a merged model of parents A (t = 0) and B (t = 1), at every t the merge sweep evaluated, the
weights are interpolated in memory (the merge method of the lineage: no new model is written or
trained), the common sample goes through the interpolated model, and each parent's SAE encodes its
activations at the lineage's hook. Per t and parent::

    explained_variance   1 - SSE / SST of the parent's reconstruction of the merged activations
    l0                   mean active features per position
    share_kept           of the parent's features active on the sample, the share whose activation
                         pattern on the merged model correlates above the threshold with the same
                         feature's pattern on the parent (classes.above_threshold: the comparison
                         every persisting count makes)

At t = 0 the merge is A itself, so A's row reproduces A's own SAE on the sample (share 1); it shows
where along the interpolation each parent's features stop being read by its dictionary.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from featureflow.flow.arrays import load_acts, load_sample
from featureflow.flow.matches import above_threshold
from featureflow.runtime import pick_device
from featureflow.settings import Resources

log = logging.getLogger(__name__)
PARENTS = ("first", "second")


@dataclass(frozen=True)
class MergePathFiles:
    """What the merge-path job reads, by role: the parents' (and a TIES base's) model folders, the parents'
    SAE folders and activation files, the common sample, and the sweep whose t values it follows."""

    model_dirs: dict[str, str]  # "first", "second" and, for TIES, "base"
    sae_dirs: dict[str, str]  # "first", "second"
    acts: dict[str, str]  # "first", "second"
    sample: str
    sweep_csv: str


@dataclass(frozen=True)
class MergePathSpec:
    """The merged model: its parents' names, its merge method, the site and threshold of the lineage, and
    the token positions of the common sample read at each t (its first blocks: the sample is drawn at random)."""

    first: str
    second: str
    method: str
    hook_name: str
    threshold: float
    tokens: int


class _Sums:
    """Running sums, in float64, for the explained variance, L0 and per-feature Pearson correlations."""

    def __init__(self, d_in: int, d_sae: int) -> None:
        z = lambda n: torch.zeros(n, dtype=torch.float64)  # noqa: E731
        self.n, self.sse, self.l0 = 0, 0.0, 0.0
        self.x, self.x2 = z(d_in), z(d_in)
        self.a, self.a2, self.f, self.f2, self.af = z(d_sae), z(d_sae), z(d_sae), z(d_sae), z(d_sae)
        self.active = torch.zeros(d_sae, dtype=torch.bool)

    def add(self, x: torch.Tensor, f: torch.Tensor, recon: torch.Tensor, parent: torch.Tensor) -> None:
        """One batch; sums within a batch in float32 (the activations' precision), across batches in float64."""
        x, f, recon, a = x.float().cpu(), f.float().cpu(), recon.float().cpu(), parent.float()
        self.n += len(x)
        self.sse += (x - recon).pow(2).sum().item()
        self.l0 += (f > 0).sum().item()
        for total, part in ((self.x, x.sum(0)), (self.x2, x.pow(2).sum(0)), (self.a, a.sum(0)), (self.a2, a.pow(2).sum(0)),
                            (self.f, f.sum(0)), (self.f2, f.pow(2).sum(0)), (self.af, (a * f).sum(0))):
            total += part.double()
        self.active |= (a > 0).any(0)

    def row(self, threshold: float) -> dict[str, Any]:
        n = self.n
        sst = (self.x2 - self.x.pow(2) / n).sum().item()
        cov = n * self.af - self.a * self.f
        var = (n * self.a2 - self.a.pow(2)) * (n * self.f2 - self.f.pow(2))
        corr = torch.where(var > 0, cov / var.clamp_min(1e-300).sqrt(), torch.full_like(cov, float("nan"))).numpy()
        active = self.active.numpy()
        kept = above_threshold(corr[active], threshold)
        return {"explained_variance": 1 - self.sse / sst if sst > 0 else float("nan"), "l0": self.l0 / n,
                "share_kept": float(kept.mean()) if active.any() else float("nan"), "active_features": int(active.sum()),
                "mean_corr": float(np.nanmean(corr[active])) if active.any() else float("nan")}


def sweep_ts(sweep_csv: str | Path) -> list[float]:
    """The t values the merge sweep evaluated (grid and refinement), in order."""
    return sorted(set(pd.read_csv(sweep_csv)["t"].round(6).tolist()))


@torch.no_grad()
def merge_path_rows(spec: MergePathSpec, files: MergePathFiles, batch_tokens: int, resources: Resources) -> pd.DataFrame:
    """One row per (t, parent): how the parent's dictionary reads the model merged at t (module docstring)."""
    from featureflow.lm import load_for_inference
    from featureflow.merge import load_into, load_weights, merge_weights
    from featureflow.sae import check_hook, hook_activations, load_sae

    torch.set_num_threads(resources.threads)
    device = pick_device(resources.device)
    model = load_for_inference(files.model_dirs["first"]).to(device)
    check_hook(model, spec.hook_name, spec.first)
    weights = {role: load_weights(files.model_dirs[role]) for role in files.model_dirs}
    saes = {p: load_sae(files.sae_dirs[p]).to(device) for p in PARENTS}
    parent_acts = {p: load_acts(files.acts[p])[0] for p in PARENTS}
    blocks = load_sample(files.sample)["blocks"]
    blocks = blocks[:max(1, spec.tokens // blocks.shape[1])]
    context, per_batch = blocks.shape[1], max(1, batch_tokens // blocks.shape[1])
    rows = []
    for t in tqdm(sweep_ts(files.sweep_csv), desc="merge path", unit="t", mininterval=5):
        merged = merge_weights(spec.method, weights["first"], weights["second"], t, weights.get("base"))
        load_into(model, merged)  # as the merge rule loads it
        sums: dict[str, _Sums] = {}
        for start in range(0, len(blocks), per_batch):
            ids = torch.from_numpy(np.asarray(blocks[start:start + per_batch], dtype=np.int64)).to(device)
            x = hook_activations(model, ids, spec.hook_name).flatten(0, 1)
            rows_slice = slice(start * context, start * context + len(x))
            for p in PARENTS:
                f = saes[p].encode(x)
                sums.setdefault(p, _Sums(x.shape[1], f.shape[1])).add(
                    x, f, saes[p].decode(f), torch.from_numpy(parent_acts[p][rows_slice].toarray()))
        for p in PARENTS:
            name = spec.first if p == "first" else spec.second
            rows.append({"t": t, "parent": name, "role": p, **sums[p].row(spec.threshold)})
        log.info("t %.3f: %s", t, "; ".join(f"{r['parent']} EV {r['explained_variance']:.3f} kept {r['share_kept']:.3f}"
                                          for r in rows[-2:]))
    return pd.DataFrame(rows)


def merge_path_figure(rows: pd.DataFrame, model: str, threshold: float) -> Any:
    """Share of each parent's features kept (solid) and its dictionary's explained variance (dashed) along t."""
    import plotly.graph_objects as go

    from featureflow.plotting import COLOURS

    fig = go.Figure()
    for i, (parent, part) in enumerate(rows.groupby("parent", sort=False)):
        colour = COLOURS[i % len(COLOURS)]
        fig.add_trace(go.Scatter(x=part["t"], y=part["share_kept"], mode="lines+markers", line={"color": colour},
                                 name=f"{parent}: features kept (corr > {threshold:g})"))
        fig.add_trace(go.Scatter(x=part["t"], y=part["explained_variance"], mode="lines", line={"color": colour, "dash": "dash"},
                                 name=f"{parent}: explained variance of its SAE"))
    first, second = rows["parent"].iloc[0], rows["parent"].iloc[1]
    fig.update_layout(title=f"{model}: each parent's features along the merge path (t = 0: {first}, t = 1: {second})",
                      xaxis_title="t", yaxis_title="share / explained variance", yaxis_range=[min(0, rows["explained_variance"].min()), 1.02],
                      template="plotly_white")
    return fig


def write_merge_path(model: str, spec: MergePathSpec, files: MergePathFiles, out: dict[str, str], batch_tokens: int,
                     resources: Resources) -> pd.DataFrame:
    """The `merge_path` rule: the table (out["csv"]) and its figure (out["html"], out["png"])."""
    from featureflow.plotting import save_figure

    rows = merge_path_rows(spec, files, batch_tokens, resources)
    rows.to_csv(out["csv"], index=False, float_format="%.6g")
    save_figure(merge_path_figure(rows, model, spec.threshold), out["html"], out["png"])
    return rows
