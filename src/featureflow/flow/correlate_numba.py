"""The sparse CPU engine of the correlation (numba), and the inputs and outputs every engine shares.

Exact Pearson correlation between every feature of one SAE and every feature of another.

Both models' feature activations are sparse matrices over the SAME rows (token positions of the
common sample, or token types for the paper code's variant). For features x (of A) and y (of B)::

    r(x, y) = (sum(x*y)/n - mean(x) mean(y)) / (std(x) std(y))

Only the cross products sum(x*y) need the pairs; they are X^T Y. We never hold that a x b matrix.
A compiled kernel walks the features of A (rows of X^T, i.e. X in CSC), and for each one adds the
B-activations of the tokens where it fires into a dense float64 accumulator of length b. That row
of X^T Y turns into correlations at once, which update the top-k partners of the A feature and the
running top-k partners of every B feature. Memory: the two sparse inputs, a CSC copy of X, and
O(parts * b * k). The kernel is bound by memory latency (B's rows are fetched in scattered order),
so it prefetches a few tokens ahead.

Features that never fire (or are constant) have no defined correlation: their partner is -1 and
their correlation NaN, and they can never be anyone's partner.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from featureflow.flow.matches import Matches

# Features of A are dealt round-robin to this many parts (independent of the thread count, so
# results do not depend on it); each part keeps its own top-k per B feature, merged at the end.
PARTS = 16


# How many tokens ahead the kernel prefetches the row pointer / the row of B's activations. The
# kernel is bound by memory latency (rows of B are fetched in a scattered order); prefetching
# halves its time on a 2-core EPYC (benchmarks/correlation.py).
PREFETCH_PTR, PREFETCH_ROW = 16, 8


@intrinsic
def _prefetch(typingctx, arr, idx):  # pragma: no cover - compiled
    """Hint the CPU to fetch arr[idx] into cache (LLVM's prefetch; a no-op on correctness)."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [args[1]], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])  # read, high locality, data
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@numba.njit(cache=True, inline="always")
def _insert(vals: np.ndarray, idx: np.ndarray, r: float, j: int) -> None:
    """Insert (r, j) into the descending top-k list (vals, idx) if it belongs there."""
    k = vals.shape[0]
    pos = k - 1
    while pos > 0 and vals[pos - 1] < r:
        vals[pos] = vals[pos - 1]
        idx[pos] = idx[pos - 1]
        pos -= 1
    vals[pos] = r
    idx[pos] = j


@numba.njit(parallel=True, cache=True)
def _top_k_kernel(xptr, xrows, xval, yptr, ycols, yval, mu_x, inv_sd_x, mu_y, inv_sd_y, inv_n,
                  row_val, row_idx, col_val, col_idx):  # pragma: no cover - compiled
    a, b = mu_x.shape[0], mu_y.shape[0]
    n_parts = col_val.shape[0]
    for p in numba.prange(n_parts):
        acc = np.zeros(b, dtype=np.float64)
        cv, ci = col_val[p], col_idx[p]
        for i in range(p, a, n_parts):
            s0, s1 = xptr[i], xptr[i + 1]
            for s in range(s0, s1):
                if s + PREFETCH_PTR < s1:
                    _prefetch(yptr, xrows[s + PREFETCH_PTR])
                if s + PREFETCH_ROW < s1:
                    ahead = yptr[xrows[s + PREFETCH_ROW]]
                    _prefetch(ycols, ahead)
                    _prefetch(yval, ahead)
                t, v = xrows[s], np.float64(xval[s])
                for q in range(yptr[t], yptr[t + 1]):
                    acc[ycols[q]] += v * yval[q]
            mx, sx = mu_x[i], inv_sd_x[i]
            rv, ri = row_val[i], row_idx[i]
            for j in range(b):
                # NaN for a constant feature on either side: every comparison below is False
                r = (acc[j] * inv_n - mx * mu_y[j]) * sx * inv_sd_y[j]
                acc[j] = 0.0
                if r > rv[-1]:
                    _insert(rv, ri, r, j)
                if r > cv[j, -1]:
                    _insert(cv[j], ci[j], r, i)


@numba.njit(cache=True)
def _column_sums(indices, data, d):  # pragma: no cover - compiled
    total, sq = np.zeros(d), np.zeros(d)
    for e in range(indices.size):
        v = np.float64(data[e])
        total[indices[e]] += v
        sq[indices[e]] += v * v
    return total, sq


def column_moments(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation of every column of a sparse matrix (float64)."""
    n = m.shape[0]
    total, sq = _column_sums(m.indices, m.data, m.shape[1])
    mean = total / n
    var = np.maximum(sq / n - mean * mean, 0.0)
    return mean, np.sqrt(var)


def _inverse_sd(sd: np.ndarray, mean: np.ndarray) -> np.ndarray:
    # Relative cut: a spread below float rounding of the mean counts as constant.
    constant = sd <= 1e-7 * np.maximum(np.abs(mean), 1e-30)
    with np.errstate(divide="ignore"):
        return np.where(constant, np.nan, 1.0 / np.where(constant, 1.0, sd))


def prepare_inputs(x: sp.spmatrix, y: sp.spmatrix, k: int) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, np.ndarray,
                                                                    np.ndarray, np.ndarray]:
    """Check two activation matrices and return them as float32 CSR without duplicate entries, with
    each column's mean and inverse standard deviation (NaN: constant): (x, y, mu_x, inv_x, mu_y, inv_y)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"row counts differ: {x.shape[0]} vs {y.shape[0]} (not the same sample)")
    if k < 1:
        raise ValueError(f"top_k must be >= 1, got {k}")
    x = sp.csr_matrix(x, dtype=np.float32)
    y = sp.csr_matrix(y, dtype=np.float32)
    x.sum_duplicates()
    y.sum_duplicates()
    mu_x, sd_x = column_moments(x)
    mu_y, sd_y = column_moments(y)
    return x, y, mu_x, _inverse_sd(sd_x, mu_x), mu_y, _inverse_sd(sd_y, mu_y)


def matches_from_lists(fwd: tuple[np.ndarray, np.ndarray], bwd: tuple[np.ndarray, np.ndarray], inv_x: np.ndarray,
                       inv_y: np.ndarray, n_rows: int) -> Matches:
    """Matches from float64 top-k lists, each a (values, indices) pair, in which -inf (or NaN) marks a missing partner."""
    return Matches(*_finish(*fwd), *_finish(*bwd), active_a=np.isfinite(inv_x), active_b=np.isfinite(inv_y), n_rows=n_rows)


def top_k_matches(x: sp.spmatrix, y: sp.spmatrix, k: int = 1, threads: int | None = None) -> Matches:
    """Top-k Pearson partners between the columns of `x` [n, a] and of `y` [n, b], both ways."""
    x, y, mu_x, inv_x, mu_y, inv_y = prepare_inputs(x, y, k)
    n, a, b = x.shape[0], x.shape[1], y.shape[1]
    xc = x.tocsc()
    del x
    xc.sort_indices()  # tokens of each A feature in order: B's rows are fetched front to back
    row_val = np.full((a, k), -np.inf)
    row_idx = np.full((a, k), -1, dtype=np.int32)
    col_val = np.full((PARTS, b, k), -np.inf)
    col_idx = np.full((PARTS, b, k), -1, dtype=np.int32)
    previous = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        _top_k_kernel(xc.indptr.astype(np.int64), xc.indices, xc.data, y.indptr.astype(np.int64), y.indices, y.data,
                      mu_x, inv_x, mu_y, inv_y, 1.0 / n, row_val, row_idx, col_val, col_idx)
    finally:
        numba.set_num_threads(previous)
    bwd_val, bwd_idx = _merge_parts(col_val, col_idx, k)
    return matches_from_lists((row_val, row_idx), (bwd_val, bwd_idx), inv_x, inv_y, n)


def _merge_parts(col_val: np.ndarray, col_idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k over the parts' lists per B feature; ties go to the lower A index (deterministic)."""
    parts, b, _ = col_val.shape
    vals = col_val.transpose(1, 0, 2).reshape(b, parts * k)
    idx = col_idx.transpose(1, 0, 2).reshape(b, parts * k)
    order = np.lexsort((np.where(idx < 0, np.iinfo(np.int32).max, idx), -vals), axis=-1)[:, :k]
    return np.take_along_axis(vals, order, 1), np.take_along_axis(idx, order, 1)


def _finish(vals: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    missing = ~np.isfinite(vals)
    return np.where(missing, -1, idx).astype(np.int32), np.where(missing, np.nan, vals).astype(np.float32)
