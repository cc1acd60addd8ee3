"""The shuffle null of an edge: how well a feature's best partner correlates by chance.

The partner model's activations are taken from the same stored file, with every context of the
common sample circularly shifted by its own seeded offset (1 .. context - 1 positions). Each
feature keeps its activation values, its density and its run lengths within a context, but no
longer sees the same tokens as the features of the other side, so whatever best-partner
correlation survives is chance (plus the autocorrelation of features along a context). One pass
of the edge's correlation per permutation; the null distribution pools the best-partner
correlations of both sides' active features over all permutations.

`null_thresholds` turns that distribution into the threshold at which a given share of features
would be called persisting by chance (the false-match rate); `resolve_threshold` reads a config
threshold such as ``null-0.001`` as the largest such threshold over the lineage's edges.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from featureflow.flow.correlate import METHODS, match_features, token_type_means
from featureflow.flow.matches import above_threshold
from featureflow.settings import CorrelationSettings, Resources

log = logging.getLogger(__name__)

NULL_THRESHOLD = re.compile(r"^null-(0?\.\d+|1e-\d+)$")
RATES = (0.01, 0.001)  # false-match rates reported for every edge


def shifted_rows(n_rows: int, context: int, rng: np.random.Generator) -> np.ndarray:
    """Row order that shifts every context of `context` rows circularly by its own offset in [1, context)."""
    if context < 2 or n_rows % context:
        raise ValueError(f"cannot shift contexts of {context} positions in {n_rows} rows")
    blocks = n_rows // context
    offsets = rng.integers(1, context, size=blocks)
    pos = (np.arange(context)[None, :] + offsets[:, None]) % context
    return (np.arange(blocks)[:, None] * context + pos).reshape(-1)


@dataclass(frozen=True)
class Shuffle:
    """How the null shifts the partner's contexts: this many seeded passes."""

    permutations: int
    seed: int


def null_best_partners(a: sp.csr_matrix, b: sp.csr_matrix, blocks: np.ndarray, settings: CorrelationSettings,
                       shuffle: Shuffle, resources: Resources) -> dict[str, np.ndarray]:
    """Best-partner correlations of A's features against B with shifted contexts and of B's against A,
    over the sample's token `blocks` [n_blocks, context] (rows of A and B in that order), one pass per
    permutation: {"fwd": [p, a], "bwd": [p, b]} float32, NaN for features that never vary."""

    if shuffle.permutations < 1:
        raise ValueError(f"controls.shuffle.permutations must be at least 1, got {shuffle.permutations}")
    if settings.method not in METHODS:
        raise ValueError(f"correlation method {settings.method!r}: expected one of {METHODS}")
    tokens = blocks.reshape(-1)
    rng = np.random.default_rng([shuffle.seed, shuffle.permutations])
    fwd, bwd = [], []
    for p in range(shuffle.permutations):
        x, y = a, sp.csr_matrix(b[shifted_rows(b.shape[0], blocks.shape[1], rng)])
        if settings.method == "token_type":  # each row keeps the sample's token: B's values moved to other tokens
            x, y = token_type_means(a, tokens), token_type_means(y, tokens)
        m, backend = match_features(x, y, 1, settings.engine, resources)
        fwd.append(np.where(m.active_a, m.fwd_corr[:, 0], np.nan))
        bwd.append(np.where(m.active_b, m.bwd_corr[:, 0], np.nan))
        log.info("shift %d/%d (%s): 99.9th percentile of the best chance correlation %.3f", p + 1, shuffle.permutations,
                 backend, np.nanquantile(np.concatenate([fwd[-1], bwd[-1]]), 0.999) if np.isfinite(fwd[-1]).any() else float("nan"))
    return {"fwd": np.stack(fwd).astype(np.float32), "bwd": np.stack(bwd).astype(np.float32)}


def null_edge(acts_a: str | Path, acts_b: str | Path, out_npz: str | Path, settings: CorrelationSettings,
              shuffle: Shuffle, resources: Resources) -> dict[str, Any]:
    """The `null` stage for one edge: `null_best_partners` of two activation files (same sample),
    written to `out_npz`; returns the thresholds at the reported false-match rates."""
    from featureflow.flow.arrays import load_acts

    a, tokens, meta_a = load_acts(acts_a)
    b, tokens_b, meta_b = load_acts(acts_b)
    if meta_a["sample"] != meta_b["sample"] or not np.array_equal(tokens, tokens_b):
        raise ValueError(f"{acts_a} and {acts_b} were computed on different token samples")
    with np.load(acts_a) as z:
        context = int(z["context_size"])
    null = null_best_partners(a, b, tokens.reshape(-1, context), settings, shuffle, resources)
    np.savez_compressed(out_npz, **null, meta_source=np.array(meta_a["model"]), meta_target=np.array(meta_b["model"]),
                        meta_permutations=np.array(shuffle.permutations), meta_context=np.array(context))
    summary = null_thresholds(null)
    log.info("%s -> %s: thresholds at false-match rates %s", meta_a["model"], meta_b["model"], summary)
    return summary


def load_null(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {"fwd": z["fwd"], "bwd": z["bwd"]}


def null_values(null: dict[str, np.ndarray]) -> np.ndarray:
    """The pooled null distribution: every active feature's best chance correlation, both sides, all permutations."""
    values = np.concatenate([null["fwd"].reshape(-1), null["bwd"].reshape(-1)])
    return values[np.isfinite(values)]


def share_above(values: np.ndarray, threshold: float | np.ndarray) -> float | np.ndarray:
    """Share of `values` strictly above `threshold` by the classes' comparison (NaN never above; 0 when
    there are none); an array of thresholds gives an array of shares."""
    t = np.asarray(threshold, dtype=np.float32)
    if np.size(values) == 0:
        return np.zeros_like(t, dtype=float)
    return above_threshold(np.asarray(values).reshape(-1, 1), t.reshape(1, -1)).mean(0).reshape(t.shape)


def false_match_rate(null: dict[str, np.ndarray], threshold: float | np.ndarray) -> float | np.ndarray:
    """Share of active features whose best chance partner correlates above `threshold` (the classes' `>`)."""
    return share_above(null_values(null), threshold)


def threshold_at(null: dict[str, np.ndarray], rate: float) -> float:
    """The smallest threshold whose false-match rate is at most `rate` (a value of the null itself)."""
    values = np.sort(null_values(null).astype(np.float32))
    if values.size == 0:
        return float("nan")
    allowed = int(np.floor(rate * values.size))  # this many values may lie above the threshold
    return float(values[values.size - 1 - allowed])


def null_thresholds(null: dict[str, np.ndarray]) -> dict[str, float]:
    """{"rate_0.01": threshold, "rate_0.001": threshold, "n": values} of one edge's null."""
    return {**{f"rate_{r:g}": round(threshold_at(null, r), 6) for r in RATES}, "n": int(null_values(null).size)}


def parse_null_threshold(value: float | str) -> float | None:
    """The false-match rate of a `null-<rate>` threshold, or None for a number."""
    if isinstance(value, (int, float)):
        return None
    match = NULL_THRESHOLD.match(str(value))
    rate = float(match.group(1)) if match else -1.0
    if not 0 < rate < 1:
        raise ValueError(f"config key 'threshold': {value!r} is neither a number nor 'null-<rate>' with 0 < rate < 1 "
                         "(e.g. null-0.001)")
    return rate


def resolve_threshold(value: float | str, null_files: dict[str, str | Path]) -> float:
    """The numeric threshold: `value` itself, or for `null-<rate>` the largest threshold over the edges'
    nulls at which the false-match rate is at most `rate` (one threshold for the whole lineage)."""
    rate = parse_null_threshold(value)
    if rate is None:
        return float(value)
    if not null_files:
        raise ValueError(f"config key 'threshold': {value!r} needs the shuffle null (controls.shuffle)")
    per_edge = {edge: threshold_at(load_null(path), rate) for edge, path in null_files.items()}
    chosen = max(per_edge.values())
    log.info("threshold %s: %.4f (per edge: %s)", value, chosen, {e: round(t, 4) for e, t in per_edge.items()})
    return chosen
