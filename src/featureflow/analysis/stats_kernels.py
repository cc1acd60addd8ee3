"""The compiled per-feature passes of `featureflow.analysis.features.feature_stats` over CSC activations
(one column per feature). Kept apart so that the jobs that only read the statistics (browser, case
studies, autointerp) do not import numba."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _top_per_column(indptr, rows, vals, n):  # pragma: no cover - compiled
    d = len(indptr) - 1
    top_rows = np.full((d, n), -1, dtype=np.int64)
    top_vals = np.zeros((d, n), dtype=np.float32)
    for j in range(d):
        lo, hi = indptr[j], indptr[j + 1]
        if hi == lo:
            continue
        order = np.argsort(-vals[lo:hi], kind="mergesort")[:n]  # ties: the earlier position first
        for k in range(len(order)):
            top_rows[j, k] = rows[lo + order[k]]
            top_vals[j, k] = vals[lo + order[k]]
    return top_rows, top_vals


@numba.njit(cache=True)
def _top_tokens(indptr, rows, vals, tokens, token_count, min_count, n, vocab):  # pragma: no cover - compiled
    """Per feature: the n token ids with the highest mean activation over all their occurrences."""
    d = len(indptr) - 1
    out_ids = np.full((d, n), -1, dtype=np.int64)
    out_mean = np.zeros((d, n), dtype=np.float32)
    acc = np.zeros(vocab, dtype=np.float64)
    touched = np.zeros(vocab, dtype=np.bool_)
    seen = np.empty(vocab, dtype=np.int64)
    for j in range(d):
        m = 0
        for p in range(indptr[j], indptr[j + 1]):
            t = tokens[rows[p]]
            if not touched[t]:
                touched[t] = True
                seen[m] = t
                m += 1
            acc[t] += vals[p]
        means = np.empty(m, dtype=np.float64)
        for i in range(m):
            t = seen[i]
            means[i] = acc[t] / token_count[t] if token_count[t] >= min_count else -1.0
        order = np.argsort(-means, kind="mergesort")
        k = 0
        for i in order:
            if k == n or means[i] <= 0:
                break
            out_ids[j, k] = seen[i]
            out_mean[j, k] = means[i]
            k += 1
        for i in range(m):
            acc[seen[i]] = 0.0
            touched[seen[i]] = False
    return out_ids, out_mean


@numba.njit(cache=True)
def _histograms(indptr, vals, col_max, bins):  # pragma: no cover - compiled
    d = len(indptr) - 1
    hist = np.zeros((d, bins), dtype=np.int32)
    for j in range(d):
        top = col_max[j]
        if top <= 0:
            continue
        for p in range(indptr[j], indptr[j + 1]):
            b = int(vals[p] / top * bins)
            hist[j, min(b, bins - 1)] += 1
    return hist
