"""Other ways to say which feature of one SAE "is" a feature of another (criteria beside the paper's).

* ``best_partner`` (the paper's, the default): a feature persists when the activation correlation
  with its best partner reaches the threshold (featureflow.flow.correlate). Two features may share
  one partner.
* ``one_to_one``: the same correlations, but every feature gets at most one partner and no partner
  is used twice: the assignment over the sparse top-k graph (both directions' top-k edges) that
  maximises the summed correlation, from ``scipy.sparse.csgraph.min_weight_full_bipartite_matching``
  (LAPJVsp on the sparse graph, never a dense a x b matrix). Threshold-free; the threshold is then
  applied to each matched pair.
* ``decoder_cosine``: cosine similarity of the two SAEs' decoder directions, top-k both ways. It needs
  no activations, so it is the only criterion that still works where the activation spaces of the
  two models differ; its scale is not a correlation's, so the same threshold is a different bar.

All three produce a :class:`~featureflow.flow.correlate.Matches` (one-to-one with k = 1), so the
classes, the counts and the Sankey work on any of them unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from featureflow.criteria import CRITERIA
from featureflow.flow.classes import counts_threshold
from featureflow.flow.matches import Matches, above_threshold, load_matches, save_matches

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# Cost of leaving a feature unmatched, per side. A real pair costs 1 - r, so matching i with j beats
# leaving both alone exactly when r > 0: the assignment maximises the summed positive correlation.
_UNMATCHED = 0.5
_EPS = 1e-9  # a zero-cost edge would vanish from the sparse graph


def _unit_rows(w: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    import torch

    w = w.to(torch.float64)
    norm = w.norm(dim=1, keepdim=True)
    alive = (norm[:, 0] > 0).numpy()
    return w / norm.clamp_min(torch.finfo(torch.float64).tiny), alive


def _merge_top_k(vals: torch.Tensor, idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    top, pos = vals.topk(k, dim=0)
    return top, idx.gather(0, pos)


def decoder_cosine_matches(w_dec_a: torch.Tensor, w_dec_b: torch.Tensor, k: int, block: int = 2048) -> Matches:
    """Top-k decoder-direction cosines both ways between two SAEs' decoders ([d_sae, d_in] each).

    Works in blocks of A's features ([block, b] at a time) and keeps B's running top-k, so memory is
    O((a + b) k + block b). Zero decoder rows have no direction: no partner (-1, NaN), like a feature
    that never fires under the correlation criterion."""
    import torch  # here, not at the top: the criteria table (a cheap rule after classify) needs no torch

    if w_dec_a.shape[1] != w_dec_b.shape[1]:
        raise ValueError(f"decoders of different widths: d_in {w_dec_a.shape[1]} and {w_dec_b.shape[1]}")
    ua, alive_a = _unit_rows(w_dec_a)
    ub, alive_b = _unit_rows(w_dec_b)
    a, b = ua.shape[0], ub.shape[0]
    k = min(k, a, b)
    dead_a, dead_b = torch.from_numpy(~alive_a), torch.from_numpy(~alive_b)
    fwd_vals, fwd_idx = [], []
    bwd_vals = torch.full((k, b), -np.inf, dtype=torch.float64)
    bwd_idx = torch.full((k, b), -1, dtype=torch.int64)
    for start in range(0, a, block):
        s = ua[start:start + block] @ ub.T
        s[:, dead_b] = -np.inf
        s[dead_a[start:start + block]] = -np.inf
        v, i = s.topk(k, dim=1)
        fwd_vals.append(v)
        fwd_idx.append(i)
        v, i = s.topk(min(k, s.shape[0]), dim=0)
        bwd_vals, bwd_idx = _merge_top_k(torch.cat([bwd_vals, v]), torch.cat([bwd_idx, i + start]), k)

    def finish(vals: torch.Tensor, idx: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        none = ~torch.isfinite(vals)
        return (idx.masked_fill(none, -1).numpy().astype(np.int32),
                vals.masked_fill(none, float("nan")).numpy().astype(np.float32))

    fi, fc = finish(torch.cat(fwd_vals), torch.cat(fwd_idx))
    bi, bc = finish(bwd_vals.T.contiguous(), bwd_idx.T.contiguous())
    return Matches(fi, fc, bi, bc, alive_a, alive_b, n_rows=int(w_dec_a.shape[1]))


def _candidate_pairs(m: Matches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (A feature, B feature, r) edges of the top-k graph, both directions, r > 0."""
    a, b = len(m.fwd_idx), len(m.bwd_idx)
    rows = np.concatenate([np.repeat(np.arange(a), m.fwd_idx.shape[1]), m.bwd_idx.ravel()])
    cols = np.concatenate([m.fwd_idx.ravel(), np.repeat(np.arange(b), m.bwd_idx.shape[1])])
    corr = np.concatenate([m.fwd_corr.ravel(), m.bwd_corr.ravel()]).astype(np.float64)
    keep = (rows >= 0) & (cols >= 0) & np.isfinite(corr) & (corr > 0)
    rows, cols, corr = rows[keep], cols[keep], corr[keep]
    key, first = np.unique(rows.astype(np.int64) * b + cols, return_index=True)
    return rows[first], cols[first], corr[first]


def one_to_one(m: Matches) -> Matches:
    """The assignment that maximises summed correlation over the top-k graph; each feature keeps at
    most one partner (k = 1 in the result; -1 / NaN where unmatched).

    The graph is made square and always perfectly matchable with a dummy partner per feature: A_i may
    take its dummy (cost 1/2), so may B_j, and two dummies pair at ~0 cost whenever their features are
    matched to each other."""
    a, b = len(m.fwd_idx), len(m.bwd_idx)
    ri, ci, r = _candidate_pairs(m)
    n = len(r)
    # rows: A features 0..a-1, then B's dummies a..a+b-1; columns: B features 0..b-1, then A's dummies.
    rows = np.concatenate([ri, np.arange(a), a + np.arange(b), a + ci])
    cols = np.concatenate([ci, b + np.arange(a), np.arange(b), b + ri])
    cost = np.concatenate([1.0 - r + _EPS, np.full(a, _UNMATCHED), np.full(b, _UNMATCHED), np.full(n, _EPS)])
    graph = sp.csr_matrix((cost, (rows, cols)), shape=(a + b, a + b))
    _, col_of_row = min_weight_full_bipartite_matching(graph)
    partner = col_of_row[:a]
    partner = np.where(partner < b, partner, -1)
    lookup = dict(zip((ri.astype(np.int64) * b + ci).tolist(), r.tolist(), strict=True))
    fwd_corr = np.array([lookup[i * b + j] if j >= 0 else np.nan for i, j in enumerate(partner.tolist())], dtype=np.float32)
    bwd_idx = np.full(b, -1, dtype=np.int32)
    bwd_corr = np.full(b, np.nan, dtype=np.float32)
    matched = partner >= 0
    bwd_idx[partner[matched]] = np.flatnonzero(matched)
    bwd_corr[partner[matched]] = fwd_corr[matched]
    log.info("one-to-one: %d of %d / %d features matched (%d candidate pairs)", matched.sum(), a, b, n)
    return Matches(partner.astype(np.int32)[:, None], fwd_corr[:, None], bwd_idx[:, None], bwd_corr[:, None],
                   m.active_a, m.active_b, m.n_rows)


def pair_set(m: Matches, threshold: float) -> set[tuple[int, int]]:
    """The persisting pairs of a criterion: (A feature, its first partner) where that score is above
    the threshold, compared as classify compares (so best-partner pairs are classify's persisting)."""
    ok = np.flatnonzero(m.active_a & above_threshold(m.fwd_corr[:, 0], threshold) & (m.fwd_idx[:, 0] >= 0))
    return set(zip(ok.tolist(), m.fwd_idx[ok, 0].tolist(), strict=True))


def criteria_rows(edge: str, by_criterion: dict[str, Matches], threshold: float) -> list[dict[str, object]]:
    """Per criterion on one edge: persisting pairs, distinct features on each side, and the Jaccard
    index of its pair set with the paper's (best-partner) pair set."""
    pairs = {c: pair_set(m, threshold) for c, m in by_criterion.items()}
    ref = pairs.get("best_partner", set())
    rows = []
    for c, p in pairs.items():
        union = len(p | ref)
        rows.append({"edge": edge, "criterion": c, "threshold": threshold, "pairs": len(p),
                     "source_features": len({i for i, _ in p}), "target_features": len({j for _, j in p}),
                     "jaccard_with_best_partner": len(p & ref) / union if union else float("nan")})
    return rows


def write_decoder_cosine(sae_a: str | Path, sae_b: str | Path, out_npz: str | Path, top_k: int,
                          edge: str) -> Matches:
    """The decoder-cosine criterion for one edge, from the two saved SAEs."""
    from featureflow.sae import load_sae

    w_a, w_b = load_sae(sae_a).W_dec, load_sae(sae_b).W_dec
    log.info("%s: decoder cosines between %d and %d features (d_in %d), top-%d", edge, w_a.shape[0], w_b.shape[0],
             w_a.shape[1], top_k)
    m = decoder_cosine_matches(w_a, w_b, top_k)
    save_matches(out_npz, m, {"edge": edge, "criterion": "decoder_cosine"})
    return m


def write_one_to_one(corr_npz: str | Path, out_npz: str | Path, edge: str) -> Matches:
    """The one-to-one criterion for one edge, from its stored top-k correlations."""
    m = one_to_one(load_matches(corr_npz)[0])
    save_matches(out_npz, m, {"edge": edge, "criterion": "one_to_one"})
    return m


def write_criteria_table(files: dict[str, dict[str, str]], counts_csv: str | Path, out_csv: str | Path) -> pd.DataFrame:
    """criteria.csv: every criterion on every edge (`files`: criterion -> edge -> matches file), at the
    threshold that classify used (read from its counts.csv, so a null-based threshold is resolved)."""
    threshold = counts_threshold(counts_csv)
    edges = sorted({e for per_edge in files.values() for e in per_edge})
    rows = []
    for edge in edges:
        found = {c: load_matches(files[c][edge])[0] for c in CRITERIA if edge in files.get(c, {})}
        rows += criteria_rows(edge, found, threshold)
    table = pd.DataFrame(rows)
    table.to_csv(out_csv, index=False)
    return table
