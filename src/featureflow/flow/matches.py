"""One edge's best partners in both directions (`Matches`) and their file (``results/flow/corr/{edge}.npz``).

Numpy only: the jobs that read matches (classes, criteria, controls, widths) need neither the
correlation kernel nor numba."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Matches:
    """Best partners in both directions of one edge (source = A, target = B)."""

    fwd_idx: np.ndarray   # [a, k] int32: for each A feature, its top-k B features (-1: none)
    fwd_corr: np.ndarray  # [a, k] float32, descending (NaN where no partner)
    bwd_idx: np.ndarray   # [b, k] int32: for each B feature, its top-k A features
    bwd_corr: np.ndarray  # [b, k] float32
    active_a: np.ndarray  # [a] bool: varies over the rows (has a defined correlation)
    active_b: np.ndarray  # [b] bool
    n_rows: int


def save_matches(out_npz: str | Path, m: Matches, meta: dict[str, Any]) -> None:
    """Write `m` and its string metadata (source, target, method, ...) as one compressed npz."""
    np.savez_compressed(out_npz, fwd_idx=m.fwd_idx, fwd_corr=m.fwd_corr, bwd_idx=m.bwd_idx, bwd_corr=m.bwd_corr,
                        active_a=m.active_a, active_b=m.active_b, n_rows=m.n_rows,
                        **{f"meta_{k}": np.array(v) for k, v in meta.items()})


def load_matches(path: str | Path) -> tuple[Matches, dict[str, str]]:
    """The matches and metadata that `save_matches` wrote."""
    with np.load(path) as z:
        m = Matches(z["fwd_idx"], z["fwd_corr"], z["bwd_idx"], z["bwd_corr"], z["active_a"], z["active_b"], int(z["n_rows"]))
        meta = {k[5:]: str(z[k]) for k in z.files if k.startswith("meta_")}
    return m, meta


def above_threshold(corr: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """Which correlations lie strictly above `threshold` (NaN: no partner, never above): the one
    comparison every count of persisting features makes. It is done in float32, the precision of the
    stored correlations (the browser's JavaScript does the same); thresholds broadcast like numpy."""
    return np.nan_to_num(np.asarray(corr, dtype=np.float32), nan=-np.inf) > np.asarray(threshold, dtype=np.float32)
