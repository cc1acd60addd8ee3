"""The exact all-pairs feature correlation of `correlate.top_k_matches`, with torch sparse products.

On a GPU, X^T Y comes from cuSPARSE (CSR x CSR) one block of A's features at a time, in float64,
and each block's rows turn into correlations and top-k partners both ways on the device. It gives
the CPU kernel's results: the same partners (ties go to the lower index, as there), correlations
within float rounding. It also runs on the CPU (the tests compare the two there), where the numba
kernel stays the default because it is faster and needs no dense block.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from featureflow.flow.correlate_numba import matches_from_lists, prepare_inputs
from featureflow.flow.matches import Matches


def _csr(m: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """A scipy CSR matrix on `device` as it is (int32/int64 indices, float32 values): no host copies."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the products used here are tested
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)).to(device),
                                       torch.from_numpy(m.indices.astype(np.int64)).to(device),
                                       torch.from_numpy(m.data).to(device, torch.float64), size=m.shape,
                                       check_invariants=False)  # scipy built it: sorted, in range


def _rows(parts: tuple[torch.Tensor, torch.Tensor, torch.Tensor], start: int, stop: int, width: int) -> torch.Tensor:
    """Rows start:stop of a CSR matrix given as (crow, col, values), as a CSR tensor."""
    crow, col, val = parts
    lo, hi = int(crow[start]), int(crow[stop])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow[start:stop + 1] - lo, col[lo:hi], val[lo:hi], size=(stop - start, width),
                                       check_invariants=False)


def _top_k(values: torch.Tensor, k: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest along `dim`, ties in index order, as the CPU kernel keeps them.

    topk picks among equal values arbitrarily, so the lines (rows or columns) where a finite value
    repeats among the k + 1 largest are redone with a stable sort; the others keep topk's answer.
    """
    size = values.shape[dim]
    k = min(k, size)
    vals, idx = torch.topk(values, min(k + 1, size), dim=dim, largest=True, sorted=True)
    step = vals.narrow(dim, 1, vals.shape[dim] - 1) == vals.narrow(dim, 0, vals.shape[dim] - 1)
    tied = (step & torch.isfinite(vals.narrow(dim, 1, vals.shape[dim] - 1))).any(dim=dim)
    vals, idx = vals.narrow(dim, 0, k).clone(), idx.narrow(dim, 0, k).clone()
    if bool(tied.any()):
        lines = torch.nonzero(tied).flatten()
        sub = values.index_select(1 - dim, lines)
        svals, sidx = torch.sort(sub, dim=dim, descending=True, stable=True)
        if dim == 1:
            vals[lines], idx[lines] = svals[:, :k], sidx[:, :k]
        else:
            vals[:, lines], idx[:, lines] = svals[:k], sidx[:k]
    return vals, idx


@torch.no_grad()
def top_k_matches_torch(x: sp.spmatrix, y: sp.spmatrix, k: int = 1, device: str | torch.device = "cuda",
                        block: int = 2048) -> Matches:
    """Top-k Pearson partners between the columns of `x` [n, a] and of `y` [n, b], both ways, on `device`."""
    x, y, mu_x, inv_x, mu_y, inv_y = prepare_inputs(x, y, k)
    device = torch.device(device)
    n, a, b = x.shape[0], x.shape[1], y.shape[1]
    xt = _csr(x, device).to_sparse_csc()  # X in CSC is X^T in CSR: rows are A's features
    xt_parts = (xt.ccol_indices(), xt.row_indices(), xt.values())
    del xt
    y_dev = _csr(y, device)
    mu_y_t = torch.from_numpy(mu_y).to(device)
    inv_y_t = torch.from_numpy(inv_y).to(device)
    kk = min(k, b)
    row_val = torch.full((a, k), -torch.inf, dtype=torch.float64)
    row_idx = torch.full((a, k), -1, dtype=torch.int64)
    col_val = torch.full((b, 0), -torch.inf, dtype=torch.float64, device=device)
    col_idx = torch.full((b, 0), -1, dtype=torch.int64, device=device)
    for start in range(0, a, block):
        stop = min(a, start + block)
        xty = torch.sparse.mm(_rows(xt_parts, start, stop, n), y_dev).to_dense()  # [rows, b] of sum(x*y)
        mu = torch.from_numpy(mu_x[start:stop]).to(device)[:, None]
        inv = torch.from_numpy(inv_x[start:stop]).to(device)[:, None]
        r = ((xty / n - mu * mu_y_t[None, :]) * inv * inv_y_t[None, :]).nan_to_num_(nan=-torch.inf)
        del xty
        vals, idx = _top_k(r, kk, dim=1)
        row_val[start:stop, :kk], row_idx[start:stop, :kk] = vals.cpu(), idx.cpu()
        vals, idx = _top_k(r, k, dim=0)  # each B feature's best in this block
        col_val, order = torch.sort(torch.cat([col_val, vals.T], dim=1), dim=1, descending=True, stable=True)
        col_idx = torch.gather(torch.cat([col_idx, idx.T + start], dim=1), 1, order)  # earlier blocks first on ties
        col_val, col_idx = col_val[:, :k], col_idx[:, :k]
    col_val, col_idx = col_val.cpu(), col_idx.cpu()
    if col_val.shape[1] < k:  # fewer A features than k
        pad = k - col_val.shape[1]
        col_val = torch.cat([col_val, torch.full((b, pad), -torch.inf, dtype=torch.float64)], dim=1)
        col_idx = torch.cat([col_idx, torch.full((b, pad), -1, dtype=torch.int64)], dim=1)
    return matches_from_lists((row_val.numpy(), row_idx.numpy()), (col_val.numpy(), col_idx.numpy()), inv_x, inv_y, n)
