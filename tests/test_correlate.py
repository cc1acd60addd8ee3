"""Exact all-pairs Pearson correlation from sparse activations, against numpy.corrcoef."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from featureflow.flow.arrays import save_acts
from featureflow.flow.correlate import correlate_edge, token_type_means
from featureflow.flow.correlate_dense import choose_engine, estimate_seconds, top_k_matches_auto, top_k_matches_dense
from featureflow.flow.correlate_numba import top_k_matches
from featureflow.flow.matches import load_matches
from featureflow.runtime import has_gpu_device_node
from featureflow.settings import CorrelationSettings, Resources
from helpers import REPO


def sparse_acts(rng, n, d, density=0.05):
    dense = rng.random((n, d)) * (rng.random((n, d)) < density)
    return dense


def reference_top_k(x, y, k):
    """Naive reference: the dense correlation matrix, NaN (constant columns) sorted last."""
    r = np.corrcoef(x.T, y.T)[: x.shape[1], x.shape[1]:]
    filled = np.where(np.isnan(r), -np.inf, r)
    fwd = np.argsort(-filled, axis=1, kind="stable")[:, :k]
    bwd = np.argsort(-filled.T, axis=1, kind="stable")[:, :k]
    return r, fwd, bwd


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n = 4000
    x, y = sparse_acts(rng, n, 70), sparse_acts(rng, n, 50)
    x[:, 0] = 0                          # never fires
    y[:, 1] = 0
    x[:, 2] = rng.random(n) + 0.5        # always fires, varying
    y[:, 3] = 1.5                        # always fires, constant: no defined correlation
    y[:, 4] = 2 * x[:, 5] + 0.01 * (x[:, 5] > 0)  # near-copy of x5
    x[:, 6] = 0.5 * y[:, 7]              # exact copy up to scale
    return x, y


def test_top_k_equals_numpy_corrcoef_both_ways(data):
    x, y = data
    k = 3
    m = top_k_matches(sp.csr_matrix(x), sp.csr_matrix(y), k=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        r, fwd, bwd = reference_top_k(x, y, k)
    assert m.fwd_idx.shape == (70, k) and m.bwd_idx.shape == (50, k)
    ok_a, ok_b = m.active_a, m.active_b
    assert not ok_a[0] and ok_a[2] and not ok_b[1] and not ok_b[3]
    assert ok_a.sum() == 69 and ok_b.sum() == 48
    np.testing.assert_array_equal(m.fwd_idx[ok_a], fwd[ok_a])
    np.testing.assert_allclose(m.fwd_corr[ok_a], np.take_along_axis(r, fwd, 1)[ok_a], atol=1e-5)
    np.testing.assert_array_equal(m.bwd_idx[ok_b], bwd[ok_b])
    np.testing.assert_allclose(m.bwd_corr[ok_b], np.take_along_axis(r.T, bwd, 1)[ok_b], atol=1e-5)
    # never-firing / constant features: marked, no partner, never anyone's partner
    assert (m.fwd_idx[0] == -1).all() and np.isnan(m.fwd_corr[0]).all()
    assert (m.bwd_idx[3] == -1).all() and np.isnan(m.bwd_corr[3]).all()
    assert not np.isin([1, 3], m.fwd_idx).any() and 0 not in m.bwd_idx
    assert m.bwd_idx[4, 0] == 5 and m.bwd_corr[4, 0] > 0.99
    assert m.fwd_idx[6, 0] == 7 and m.fwd_corr[6, 0] == pytest.approx(1.0, abs=1e-6)
    assert (np.diff(m.fwd_corr[ok_a], axis=1) <= 0).all(), "partners sorted by correlation"


def test_result_does_not_depend_on_thread_count(data):
    x, y = (sp.csr_matrix(a) for a in data)
    one, two = top_k_matches(x, y, k=2, threads=1), top_k_matches(x, y, k=2, threads=2)
    for field in ("fwd_idx", "fwd_corr", "bwd_idx", "bwd_corr"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field))


def test_more_partners_than_active_features_are_padded():
    x = np.zeros((50, 3))
    x[::2, 0] = 1.0
    x[1::3, 1] = 2.0
    m = top_k_matches(sp.csr_matrix(x), sp.csr_matrix(x), k=4)
    assert list(m.fwd_idx[0, :2]) == [0, 1] and list(m.fwd_idx[0, 2:]) == [-1, -1]
    assert np.isnan(m.fwd_corr[0, 2:]).all() and (m.fwd_idx[2] == -1).all()


def test_token_type_variant_is_corrcoef_of_per_type_means():
    rng = np.random.default_rng(1)
    n, vocab = 3000, 40
    tokens = rng.integers(0, vocab, n)
    x, y = sparse_acts(rng, n, 12, 0.2), sparse_acts(rng, n, 9, 0.2)
    means = token_type_means(sp.csr_matrix(x), tokens).toarray()
    present = np.unique(tokens)
    naive = np.stack([x[tokens == t].mean(0) for t in present])
    np.testing.assert_allclose(means, naive, rtol=1e-5, atol=1e-7)
    m = top_k_matches(token_type_means(sp.csr_matrix(x), tokens), token_type_means(sp.csr_matrix(y), tokens), k=1)
    r = np.corrcoef(naive.T, np.stack([y[tokens == t].mean(0) for t in present]).T)[:12, 12:]
    np.testing.assert_array_equal(m.fwd_idx[:, 0], r.argmax(1))
    np.testing.assert_allclose(m.fwd_corr[:, 0], r.max(1), atol=1e-5)


def test_correlate_edge_reads_acts_files_and_labels_the_method(tmp_path, data):
    x, y = data
    blocks = np.arange(x.shape[0], dtype=np.uint32).reshape(-1, 20) % 37
    sample = {"blocks": blocks, "digest": np.array("abc")}
    save_acts(sp.csr_matrix(x, dtype=np.float32), sample, "a", tmp_path / "a.npz")
    save_acts(sp.csr_matrix(y, dtype=np.float32), sample, "b", tmp_path / "b.npz")
    for method, rows in (("positional", x.shape[0]), ("token_type", 37)):
        correlate_edge(tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / f"{method}.npz", CorrelationSettings(method, 2, "auto"),
                       Resources.local("cpu", 2))
        m, meta = load_matches(tmp_path / f"{method}.npz")
        assert meta == {"source": "a", "target": "b", "method": method, "sample": "abc", "backend": "numba-cpu"}
        assert m.n_rows == rows
    other = {"blocks": blocks + 1, "digest": np.array("xyz")}
    save_acts(sp.csr_matrix(y, dtype=np.float32), other, "c", tmp_path / "c.npz")
    with pytest.raises(ValueError, match="different token samples"):
        correlate_edge(tmp_path / "a.npz", tmp_path / "c.npz", tmp_path / "bad.npz", CorrelationSettings("positional", 1, "auto"),
                       Resources.local("cpu", 2))


@pytest.mark.parametrize("block", [7, 4096])
def test_torch_path_gives_the_numba_kernels_partners_and_correlations(data, block):
    """The GPU path (torch sparse products, here on the CPU) against the CPU kernel: same partners,
    correlations within 1e-5, in blocks that split A's features or not."""
    from featureflow.flow.correlate_torch import top_k_matches_torch

    x, y = (sp.csr_matrix(a) for a in data)
    for k in (1, 3):
        ours, ref = top_k_matches_torch(x, y, k=k, device="cpu", block=block), top_k_matches(x, y, k=k)
        for field in ("fwd_idx", "bwd_idx", "active_a", "active_b"):
            np.testing.assert_array_equal(getattr(ours, field), getattr(ref, field), err_msg=field)
        for field in ("fwd_corr", "bwd_corr"):
            np.testing.assert_allclose(getattr(ours, field), getattr(ref, field), atol=1e-5, equal_nan=True, err_msg=field)


def tied_features() -> sp.csr_matrix:
    """Features 0, 1 and 2 fire together (0 and 1 tie for every partner), 3 elsewhere, 4 never."""
    x = np.zeros((60, 5))
    x[::2, 0] = 1.0
    x[:, 1] = x[:, 0]
    x[:, 2] = 3 * x[:, 0]
    x[1::3, 3] = 2.0
    return sp.csr_matrix(x)


def test_torch_path_breaks_ties_and_pads_like_the_kernel():
    from featureflow.flow.correlate_torch import top_k_matches_torch

    xs = tied_features()
    ours, ref = top_k_matches_torch(xs, xs, k=6, device="cpu", block=2), top_k_matches(xs, xs, k=6)
    np.testing.assert_array_equal(ours.fwd_idx, ref.fwd_idx)
    np.testing.assert_array_equal(ours.bwd_idx, ref.bwd_idx)
    assert list(ours.fwd_idx[0, :3]) == [0, 1, 2] and (ours.fwd_idx[4] == -1).all()


def assert_same_matches(ours, ref, atol=0.0):
    for field in ("fwd_idx", "bwd_idx", "active_a", "active_b"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(ref, field), err_msg=field)
    for field in ("fwd_corr", "bwd_corr"):
        np.testing.assert_allclose(getattr(ours, field), getattr(ref, field), atol=atol, equal_nan=True, err_msg=field)


@pytest.mark.parametrize("block_bytes", [2**12, 2**28])
def test_dense_path_equals_the_sparse_kernel_and_numpy(data, block_bytes):
    """The dense path (float64 GEMMs), in blocks that split A's features and the rows or not: the
    kernel's partners and correlations (same float64 sums up to order), and numpy's."""
    x, y = data
    with np.errstate(invalid="ignore", divide="ignore"):
        r, fwd, bwd = reference_top_k(x, y, 3)
    for k in (1, 3):
        dense = top_k_matches_dense(sp.csr_matrix(x), sp.csr_matrix(y), k=k, block_bytes=block_bytes)
        assert_same_matches(dense, top_k_matches(sp.csr_matrix(x), sp.csr_matrix(y), k=k), atol=1e-6)
        ok_a, ok_b = dense.active_a, dense.active_b
        np.testing.assert_array_equal(dense.fwd_idx[ok_a], fwd[ok_a, :k])
        np.testing.assert_array_equal(dense.bwd_idx[ok_b], bwd[ok_b, :k])
        np.testing.assert_allclose(dense.fwd_corr[ok_a], np.take_along_axis(r, fwd[:, :k], 1)[ok_a], atol=1e-5)
        assert (dense.fwd_idx[0] == -1).all() and (dense.bwd_idx[3] == -1).all() and 0 not in dense.bwd_idx


def test_dense_path_breaks_ties_and_pads_like_the_kernel():
    xs = tied_features()
    dense = top_k_matches_dense(xs, xs, k=6, block_bytes=80)  # blocks of 2 A features, 1 row
    assert_same_matches(dense, top_k_matches(xs, xs, k=6))
    assert list(dense.fwd_idx[0, :3]) == [0, 1, 2] and (dense.fwd_idx[4] == -1).all()


def shape_estimate(n, a, b, density, threads=2):
    l0_a, l0_b = density * a, density * b
    return estimate_seconds(n, a, b, int(n * l0_a), int(n * l0_a * l0_b), threads)


@pytest.mark.parametrize(("n", "features", "density", "engine"), [
    (120_000, 2048, 0.015, "sparse"),        # the demo: L0 ~30 of 2048
    (3_000_000, 16384, 30 / 16384, "sparse"),  # the paper: L0 ~30 of 16384
    (24_000, 16384, 0.53, "dense"),          # a user's dense SAEs: L0 ~8,700 of 16384
    (3_000_000, 16384, 0.2, "dense"),
])
def test_cost_model_picks_sparse_for_sparse_saes_and_dense_for_dense_ones(n, features, density, engine):
    est = shape_estimate(n, features, features, density)
    assert min(est, key=est.get) == engine


def test_choose_engine_measures_the_density_and_can_be_forced():
    rng = np.random.default_rng(3)
    sparse_x, dense_x = (sp.csr_matrix(sparse_acts(rng, 4000, 400, p)) for p in (0.01, 0.6))
    assert choose_engine(sparse_x, sparse_x, 2, "auto")[0] == "sparse"
    assert choose_engine(dense_x, dense_x, 2, "auto")[0] == "dense"
    assert choose_engine(sparse_x, sparse_x, 2, "dense")[0] == "dense"
    assert choose_engine(dense_x, dense_x, 2, "sparse")[0] == "sparse"
    with pytest.raises(ValueError, match="engine"):
        choose_engine(sparse_x, sparse_x, 2, "gpu")
    forced, engine = top_k_matches_auto(dense_x, dense_x[::-1], k=2, threads=2, engine="sparse")
    auto, chosen = top_k_matches_auto(dense_x, dense_x[::-1], k=2, threads=2, engine="auto")
    assert (engine, chosen) == ("sparse", "dense")
    assert_same_matches(auto, forced, atol=1e-6)


def test_correlate_edge_with_a_forced_engine_gives_the_same_file(tmp_path, data):
    x, y = data
    sample = {"blocks": np.arange(x.shape[0], dtype=np.uint32).reshape(-1, 20), "digest": np.array("abc")}
    save_acts(sp.csr_matrix(x, dtype=np.float32), sample, "a", tmp_path / "a.npz")
    save_acts(sp.csr_matrix(y, dtype=np.float32), sample, "b", tmp_path / "b.npz")
    for engine in ("sparse", "dense"):
        correlate_edge(tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / f"{engine}.npz",
                       CorrelationSettings("positional", 3, engine), Resources.local("cpu", 2))
    (sparse, meta_s), (dense, meta_d) = load_matches(tmp_path / "sparse.npz"), load_matches(tmp_path / "dense.npz")
    assert meta_s["backend"] == "numba-cpu" and meta_d["backend"] == "blas-cpu"
    assert_same_matches(dense, sparse, atol=1e-6)


def test_cpu_correlation_and_its_null_start_without_torch():
    """On a machine without a GPU device node, "auto" is the CPU and the correlate / null stages never
    import torch (2 s of every such job); the answer agrees with torch's own."""
    code = ("import sys; from featureflow.runtime import runs_on_cuda; from featureflow.flow import correlate_edge, null_edge;"
            "import featureflow.flow.correlate_dense; print(runs_on_cuda('auto'), runs_on_cuda('cuda'), runs_on_cuda('cpu'),"
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")}).stdout.split()
    import torch

    assert out[:3] == [str(torch.cuda.is_available()), "True", "False"]
    assert out[3] == str(has_gpu_device_node()), "torch is imported only where a GPU could answer"
