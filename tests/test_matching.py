"""The second matching criteria on planted dictionaries: decoder cosine and the one-to-one assignment."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.optimize import linear_sum_assignment

from featureflow.flow.correlate_numba import top_k_matches
from featureflow.flow.matches import Matches
from featureflow.flow.matching import criteria_rows, decoder_cosine_matches, one_to_one, pair_set


def planted_decoders(n: int = 200, d: int = 48, share: float = 0.4, seed: int = 0):
    """Two decoders where the first `share` of A's rows reappear (permuted, rescaled, slightly
    perturbed) in B and every other row is independent."""
    g = torch.Generator().manual_seed(seed)
    w_a = torch.randn(n, d, generator=g)
    w_b = torch.randn(n, d, generator=g)
    copies = int(share * n)
    perm = torch.randperm(n, generator=g)[:copies]
    w_b[perm] = 3.0 * w_a[:copies] + 0.05 * torch.randn(copies, d, generator=g)
    return w_a, w_b, dict(zip(range(copies), perm.tolist(), strict=True))


def test_decoder_cosine_recovers_the_planted_copies_both_ways():
    w_a, w_b, copies = planted_decoders()
    m = decoder_cosine_matches(w_a, w_b, k=3, block=64)  # several blocks: the running top-k of B is merged
    assert m.fwd_idx.shape == (200, 3) and m.bwd_idx.shape == (200, 3)
    assert pair_set(m, 0.8) == set(copies.items())
    for i, j in copies.items():
        assert m.bwd_idx[j, 0] == i and m.bwd_corr[j, 0] > 0.99
    # against a direct computation: the same top-3 values for every feature of A
    ua, ub = torch.nn.functional.normalize(w_a.double(), dim=1), torch.nn.functional.normalize(w_b.double(), dim=1)
    ref = (ua @ ub.T).topk(3, dim=1).values.numpy()
    np.testing.assert_allclose(m.fwd_corr, ref, rtol=1e-5)
    assert np.all(np.diff(m.fwd_corr, axis=1) <= 0)


def test_a_zero_decoder_row_has_no_partner_and_is_nobodys_partner():
    w_a, w_b, _ = planted_decoders(n=20, d=8)
    w_a[3] = 0
    w_b[5] = 0
    m = decoder_cosine_matches(w_a, w_b, k=2)
    assert not m.active_a[3] and not m.active_b[5]
    assert (m.fwd_idx[3] == -1).all() and np.isnan(m.fwd_corr[3]).all()
    assert 5 not in m.fwd_idx and 3 not in m.bwd_idx


def planted_activations(n_rows: int = 3000, n: int = 60, share: float = 0.4, seed: int = 1):
    """Sparse activations where 40% of B's features copy one of A's (with noise) and some B copies are
    duplicated, so that best partners collide and one-to-one has to choose."""
    rng = np.random.default_rng(seed)
    a = rng.exponential(1.0, (n_rows, n)) * (rng.random((n_rows, n)) < 0.05)
    b = rng.exponential(1.0, (n_rows, n)) * (rng.random((n_rows, n)) < 0.05)
    copies = int(share * n)
    b[:, :copies] = a[:, :copies] + 0.1 * b[:, :copies]
    b[:, copies] = a[:, 0] + 0.3 * b[:, copies]  # a second, weaker copy of A's feature 0
    return sp.csr_matrix(a), sp.csr_matrix(b), copies


def test_one_to_one_never_gives_a_feature_two_partners_and_keeps_the_copies():
    a, b, copies = planted_activations()
    m = top_k_matches(a, b, k=3)
    best_partner_targets = m.bwd_idx[:, 0]
    assert (best_partner_targets[: copies + 1] == np.r_[np.arange(copies), 0]).all(), "two B features share partner 0"
    o = one_to_one(m)
    matched = o.fwd_idx[:, 0][o.fwd_idx[:, 0] >= 0]
    assert len(set(matched.tolist())) == len(matched), "a B feature was given twice"
    assert all(o.bwd_idx[j, 0] == i for i, j in enumerate(o.fwd_idx[:, 0]) if j >= 0)
    assert pair_set(o, 0.8) == {(i, i) for i in range(copies)}  # the stronger copy wins feature 0
    assert o.bwd_idx[copies, 0] != 0


def test_one_to_one_reaches_the_optimum_of_a_dense_assignment_on_the_same_graph():
    rng = np.random.default_rng(3)
    a_n, b_n, k = 40, 30, 4
    dense = rng.uniform(-0.2, 1.0, (a_n, b_n))
    fwd_idx = np.argsort(-dense, axis=1)[:, :k]
    bwd_idx = np.argsort(-dense, axis=0)[:k].T
    m = Matches(fwd_idx.astype(np.int32), np.take_along_axis(dense, fwd_idx, 1).astype(np.float32),
                bwd_idx.astype(np.int32), np.take_along_axis(dense.T, bwd_idx, 1).astype(np.float32),
                np.ones(a_n, bool), np.ones(b_n, bool), 100)
    o = one_to_one(m)
    got = np.nansum(o.fwd_corr)
    # reference: the same top-k graph (other pairs forbidden) solved densely, leaving a pair out allowed
    graph = np.zeros((a_n, b_n))
    for i in range(a_n):
        graph[i, fwd_idx[i]] = dense[i, fwd_idx[i]]
    for j in range(b_n):
        graph[bwd_idx[j], j] = dense[bwd_idx[j], j]
    r, c = linear_sum_assignment(np.clip(graph, 0, None), maximize=True)
    assert got == pytest.approx(np.clip(graph, 0, None)[r, c].sum(), abs=1e-4)


def test_criteria_rows_count_pairs_and_their_agreement():
    a, b, copies = planted_activations()
    m = top_k_matches(a, b, k=2)
    rows = {r["criterion"]: r for r in criteria_rows("x__y", {"best_partner": m, "one_to_one": one_to_one(m)}, 0.8)}
    assert rows["best_partner"]["pairs"] == copies and rows["best_partner"]["jaccard_with_best_partner"] == 1.0
    assert rows["one_to_one"]["pairs"] == copies and rows["one_to_one"]["target_features"] == copies
    assert rows["one_to_one"]["jaccard_with_best_partner"] == pytest.approx(1.0)


def test_every_registered_criterion_is_in_the_schema_has_a_result_file_and_its_own_rule_when_it_says_so():
    """featureflow.criteria is the one declaration: the schema's enum, the result keys and the rules follow it."""
    import re

    from featureflow.config import load_schema
    from featureflow.criteria import CRITERIA
    from featureflow.paths import TEMPLATES
    from helpers import REPO, SCHEMA

    assert load_schema(SCHEMA)["properties"]["criterion"]["enum"] == list(CRITERIA)
    rules = {m for p in (REPO / "workflow/rules").glob("*.smk") for m in re.findall(r"^(?:use )?rule (\w+)", p.read_text(), re.M)}
    for c in CRITERIA.values():
        assert "{edge}" in TEMPLATES[c.result], c.name
        assert (c.name in rules) == c.own_job, f"{c.name}: own_job={c.own_job} but a rule of that name {'is' if c.name in rules else 'is not'} there"
        assert c.compares in ("activations", "decoders")
