"""The all-pairs correlation of `correlate.top_k_matches` as dense products, and the choice between the two.

The sparse kernel does one multiply-add per pair of nonzeros in a row, sum_t nnz(X_t) nnz(Y_t): at
L0 ~30 that is nothing, but at half-dense SAEs it is n a b / 4 scattered updates, slower than the
dense product X^T Y (2 n a b flop) in BLAS. The dense path computes X^T Y as float64 GEMMs over
blocks of A's features (and of rows), so it needs ~2 `block_bytes` besides the inputs; each
block of sums turns into correlations with the kernel's formula and updates the top-k lists the
kernel's way (ties go to the lower index), so both give the same partners and correlations within
float64 rounding of the sums.

`estimate_seconds` is the cost model; `top_k_matches_auto` runs the cheaper path (or a forced one).
"""

from __future__ import annotations

import logging

import numba
import numpy as np
import scipy.sparse as sp

from featureflow.flow.correlate_numba import _insert, matches_from_lists, prepare_inputs, top_k_matches
from featureflow.flow.matches import Matches

log = logging.getLogger(__name__)

ENGINES = ("auto", "sparse", "dense")

# Cost model constants: seconds per unit of work on ONE thread (both paths split their work over
# threads), for a 2-core AMD EPYC without other load. FLOP: float64 GEMM ~100 Gflop/s on 2 threads.
# ROW: the kernel at paper size (3M rows, L0 ~30; benchmarks/results/correlation.json, 11.8 s),
# where fetching each Y row is a DRAM miss. MADD and PAIR: the density rows of
# `benchmarks/correlation.py --density` (benchmarks/results/correlation_density.json, which also
# refits them): there, as here for 16384 x 16384 features, the two paths cross at ~20% density.
SPARSE_ROW_S = 2e-7     # per nonzero of X: fetch Y's row (memory latency, partly hidden by prefetching)
SPARSE_MADD_S = 1e-9    # per multiply-add of the sparse kernel: sum_t nnz(X_t) nnz(Y_t) of them
DENSE_FLOP_S = 2e-11    # per flop of the dense path, 2 n a b of them (GEMM; densifying blocks adds ~5-10%)
PAIR_S = 2e-9           # per (A, B) pair: correlation and top-k updates, in both paths
DENSE_FIXED_S = 0.05    # wall seconds the dense path takes even on tiny inputs (buffers, torch's threads)


def estimate_seconds(n: int, a: int, b: int, nnz_x: int, madds: int, threads: int) -> dict[str, float]:
    """Estimated wall seconds of the sparse kernel and of the dense path for X [n, a] and Y [n, b].

    sparse = nnz_x * row fetch + madds * multiply-add + a b * pair;  dense = 2 n a b * flop + a b * pair
    (+ a fixed cost), where madds = sum over rows of nnz(X row) * nnz(Y row) (the kernel's inner loop count).
    """
    pairs = a * b * PAIR_S
    return {"sparse": (nnz_x * SPARSE_ROW_S + madds * SPARSE_MADD_S + pairs) / threads,
            "dense": (2.0 * n * a * b * DENSE_FLOP_S + pairs) / threads + DENSE_FIXED_S}


def choose_engine(x: sp.spmatrix, y: sp.spmatrix, threads: int, engine: str) -> tuple[str, dict[str, float]]:
    """The engine to run ("sparse" or "dense"; `engine` forces one) and the cost model's estimates."""
    if engine not in ENGINES:
        raise ValueError(f"correlation engine {engine!r}: expected one of {ENGINES}")
    x, y = sp.csr_matrix(x), sp.csr_matrix(y)
    madds = int(np.dot(np.diff(x.indptr).astype(np.int64), np.diff(y.indptr).astype(np.int64)))
    est = estimate_seconds(x.shape[0], x.shape[1], y.shape[1], x.nnz, madds, threads)
    if engine == "auto":
        engine = "dense" if est["dense"] < est["sparse"] else "sparse"
    return engine, est


def top_k_matches_auto(x: sp.spmatrix, y: sp.spmatrix, k: int = 1, threads: int | None = None, *,
                       engine: str) -> tuple[Matches, str]:
    """`top_k_matches` by the cheaper engine (or the one forced); returns the matches and the engine run."""
    chosen, est = choose_engine(x, y, threads or numba.get_num_threads(), engine)
    log.info("correlation engine %s (%s; estimated sparse %.3g s, dense %.3g s on %d threads)", chosen,
             "cost model" if engine == "auto" else "forced", est["sparse"], est["dense"], threads or numba.get_num_threads())
    fn = top_k_matches_dense if chosen == "dense" else top_k_matches
    return fn(x, y, k, threads), chosen


@numba.njit(parallel=True, cache=True)
def _fill(indptr, indices, data, r0, r1, c0, c1, out):  # pragma: no cover - compiled
    """Rows r0:r1, columns c0:c1 of a CSR matrix into out[:r1 - r0] as float64."""
    for t in numba.prange(r1 - r0):
        row = out[t]
        row[:] = 0.0
        for q in range(indptr[r0 + t], indptr[r0 + t + 1]):
            j = indices[q]
            if c0 <= j < c1:
                row[j - c0] = data[q]


@numba.njit(parallel=True, cache=True)
def _update_top_k(s, start, mu_x, inv_sd_x, mu_y, inv_sd_y, inv_n, row_val, row_idx, col_val, col_idx):  # pragma: no cover
    """Turn s = X[:, start:start+c]^T Y into correlations and update both top-k lists, as the kernel does."""
    c, b = s.shape
    for ii in numba.prange(c):
        i = start + ii
        mx, sx = mu_x[i], inv_sd_x[i]
        rv, ri = row_val[i], row_idx[i]
        for j in range(b):
            r = (s[ii, j] * inv_n - mx * mu_y[j]) * sx * inv_sd_y[j]
            if r > rv[-1]:
                _insert(rv, ri, r, j)
    width = 64  # B features per task: rows of s are read in runs of `width`
    for blk in numba.prange((b + width - 1) // width):
        j0, j1 = blk * width, min(b, blk * width + width)
        for ii in range(c):  # A features in index order: a tie keeps the lower index, as in the kernel
            i = start + ii
            mx, sx = mu_x[i], inv_sd_x[i]
            for j in range(j0, j1):
                r = (s[ii, j] * inv_n - mx * mu_y[j]) * sx * inv_sd_y[j]
                if r > col_val[j, -1]:
                    _insert(col_val[j], col_idx[j], r, i)


def top_k_matches_dense(x: sp.spmatrix, y: sp.spmatrix, k: int = 1, threads: int | None = None,
                        block_bytes: int = 2**28) -> Matches:
    """`top_k_matches` with X^T Y as float64 GEMMs (torch) over blocks of A's features and of rows.

    A block of c A features holds its sums [c, b] (c b 8 <= block_bytes); rows go through in
    chunks whose dense X and Y parts also fit `block_bytes`.
    """
    import torch

    x, y, mu_x, inv_x, mu_y, inv_y = prepare_inputs(x, y, k)
    n, a, b = x.shape[0], x.shape[1], y.shape[1]
    c = int(min(a, max(1, block_bytes // (8 * b))))
    rows = int(min(n, max(1, block_bytes // (8 * (b + c)))))
    row_val, row_idx = np.full((a, k), -np.inf), np.full((a, k), -1, dtype=np.int32)
    col_val, col_idx = np.full((b, k), -np.inf), np.full((b, k), -1, dtype=np.int32)
    sums, yd = np.empty((c, b)), np.empty((rows, b))
    previous = numba.get_num_threads(), torch.get_num_threads()
    if threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(threads)
    try:
        for start in range(0, a, c):
            stop = min(a, start + c)
            xd = np.empty((rows, stop - start))
            s = torch.from_numpy(sums[: stop - start]).zero_()
            for r0 in range(0, n, rows):
                r1 = min(n, r0 + rows)
                _fill(x.indptr, x.indices, x.data, r0, r1, start, stop, xd)
                _fill(y.indptr, y.indices, y.data, r0, r1, 0, b, yd)
                s.addmm_(torch.from_numpy(xd[: r1 - r0]).T, torch.from_numpy(yd[: r1 - r0]))
            _update_top_k(sums[: stop - start], start, mu_x, inv_x, mu_y, inv_y, 1.0 / n, row_val, row_idx, col_val, col_idx)
    finally:
        numba.set_num_threads(previous[0])
        torch.set_num_threads(previous[1])
    return matches_from_lists((row_val, row_idx), (col_val, col_idx), inv_x, inv_y, n)
