"""Feature matching along one edge: which engine computes the exact correlations, and the job around it.

The engines give the same top-k partners both ways (`Matches`): the numba kernel on sparse
activations (`correlate_numba`, the module docstring has the method), float64 GEMMs for dense ones
(`correlate_dense`, which also picks between the two), cuSPARSE on a GPU (`correlate_torch`). This
module only dispatches, and reads and writes the job's files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from featureflow.flow.matches import Matches, save_matches
from featureflow.settings import CorrelationSettings, Resources

log = logging.getLogger(__name__)

METHODS = ("positional", "token_type")


def token_type_means(acts: sp.csr_matrix, tokens: np.ndarray) -> sp.csr_matrix:
    """The paper code's variant: each feature's mean activation per token type present in the
    sample, as a sparse [n_types, d_sae] matrix (rows in ascending token id)."""
    types, which, counts = np.unique(tokens, return_inverse=True, return_counts=True)
    onehot = sp.csr_matrix((1.0 / counts[which], (which, np.arange(tokens.size))), shape=(types.size, tokens.size))
    return (onehot @ sp.csr_matrix(acts, dtype=np.float64)).astype(np.float32).tocsr()


def correlate_edge(acts_a: str | Path, acts_b: str | Path, out_npz: str | Path, settings: CorrelationSettings,
                   resources: Resources) -> Matches:
    """Match the features of two models' activation files (same sample) and write `out_npz`.

    On a GPU (the job's device resolves to CUDA) the products run in cuSPARSE
    (`correlate_torch`); elsewhere the numba kernel or, for dense activations, float64 GEMMs
    (`correlate_dense`, picked by `settings.engine`) run on the job's threads. All give the same
    partners; the file records which one ran.
    """
    from featureflow.flow.arrays import load_acts

    method, top_k = settings.method, settings.top_k
    if method not in METHODS:
        raise ValueError(f"correlation method {method!r}: expected one of {METHODS}")
    a, tok_a, meta_a = load_acts(acts_a)
    b, tok_b, meta_b = load_acts(acts_b)
    if meta_a["sample"] != meta_b["sample"] or not np.array_equal(tok_a, tok_b):
        raise ValueError(f"{acts_a} and {acts_b} were computed on different token samples")
    if method == "token_type":
        a, b = token_type_means(a, tok_a), token_type_means(b, tok_b)
    log.info("correlating %s (%d features) with %s (%d features) over %d %s rows, top-%d",
             meta_a["model"], a.shape[1], meta_b["model"], b.shape[1], a.shape[0], method, top_k)
    matches, backend = match_features(a, b, top_k, settings.engine, resources)
    save_matches(out_npz, matches, {"source": meta_a["model"], "target": meta_b["model"], "method": method,
                                    "sample": meta_a["sample"], "backend": backend})
    log.info("%s -> %s: best-partner correlation median %.3f (A->B), %.3f (B->A)", meta_a["model"], meta_b["model"],
             np.nanmedian(matches.fwd_corr[:, 0]) if matches.active_a.any() else float("nan"),
             np.nanmedian(matches.bwd_corr[:, 0]) if matches.active_b.any() else float("nan"))
    return matches


def match_features(a: sp.spmatrix, b: sp.spmatrix, top_k: int, engine: str, resources: Resources) -> tuple[Matches, str]:
    """Top-k partners both ways on the job's device: cuSPARSE on a GPU, else the numba kernel or the
    dense GEMMs (`engine`); returns the matches and the backend that ran."""
    from featureflow.runtime import pick_device, runs_on_cuda

    if runs_on_cuda(resources.device):
        from featureflow.flow.correlate_torch import top_k_matches_torch

        return top_k_matches_torch(a, b, top_k, pick_device(resources.device)), "torch-cuda"
    from featureflow.flow.correlate_dense import top_k_matches_auto

    matches, chosen = top_k_matches_auto(a, b, top_k, resources.threads, engine=engine)
    return matches, {"sparse": "numba-cpu", "dense": "blas-cpu"}[chosen]
