"""Exact all-pairs feature correlation at paper size: ours vs scipy CSR X.T @ Y vs per-pair pearsonr.

Synthetic activations shaped like the paper's: 3M token positions, two SAEs of 16384 features,
~30 active features per token, feature densities spread over orders of magnitude (log-normal).
Half of B's features are noisy copies of A's, so there are real partners to find.
Each method runs in its own subprocess so that its peak memory (max RSS, inputs included) is its
own. The per-pair pearsonr loop (the paper code's approach) is timed on a subset of pairs and
extrapolated to all 16384^2 pairs; that number is an extrapolation, stated as such in the output.

    .venv/bin/python benchmarks/correlation.py            # writes benchmarks/results/correlation.json
    .venv/bin/python benchmarks/correlation.py --tokens 300000   # quicker, smaller

`--methods ours,null,criteria` adds the controls of featureflow.flow (issue #24) at the same shape:
`null` is one shuffle-null pass (every 24-token context of B circularly shifted, then the same
top-k search; its wall time against ours is the cost ratio of one permutation), `criteria` the
one-to-one assignment over our top-k graph and the decoder cosines of two random 16384 x 1024
decoders (the paper's SAE on a d_mlp of 1024).

`--density` instead times the sparse kernel against the dense path (float64 GEMMs) at feature
densities 0.1% .. 50% on a smaller shape (4096 features, 20,000 rows by default), with the cost
model's estimates and choice, its constants refitted from these rows, and its predictions for the
paper's shape; it writes benchmarks/results/correlation_density.json.

    .venv/bin/python benchmarks/correlation.py --density
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))


def synthetic(n: int, d: int, l0: float, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)

    def column_matrix(counts: np.ndarray) -> sp.csc_matrix:
        indptr = np.concatenate([[0], np.cumsum(counts)])
        rows = rng.integers(0, n, indptr[-1]).astype(np.int32)
        vals = rng.exponential(1.0, indptr[-1]).astype(np.float32)
        m = sp.csc_matrix((vals, rows, indptr), shape=(n, d))
        m.sum_duplicates()
        return m

    density = rng.lognormal(0.0, 1.5, d)
    density = np.minimum(density * l0 / density.sum(), 0.3)
    x = column_matrix(rng.binomial(n, density))
    y = column_matrix(rng.binomial(n, rng.permutation(density)))
    # B's first half: noisy copies of A's first half (90% of the firings kept, values jittered)
    half = d // 2
    xs = x[:, :half].tocoo()
    keep = rng.random(xs.nnz) < 0.9
    copy = sp.csc_matrix((xs.data[keep] * rng.uniform(0.5, 1.5, keep.sum()).astype(np.float32),
                          (xs.row[keep], xs.col[keep])), shape=(n, half))
    y = sp.hstack([copy, y[:, half:]], format="csc")
    return x.tocsr(), y.tocsr()


def at_density(n: int, d: int, p: float, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """X and Y [n, d] of mean density ~p (per-feature densities log-normal, sigma 1, at most 0.95);
    Y's first half are noisy copies of X's first half."""
    rng = np.random.default_rng(seed)

    def draw(q: np.ndarray) -> np.ndarray:
        m = np.zeros((n, d), dtype=np.float32)
        for j0 in range(0, d, 512):
            block = rng.random((n, min(512, d - j0)), dtype=np.float32) < q[j0:j0 + 512]
            m[:, j0:j0 + 512][block] = rng.exponential(1.0, int(block.sum())).astype(np.float32)
        return m

    base, scale = rng.lognormal(0.0, 1.0, d), p
    for _ in range(50):  # rescale so that the mean stays p after the cap
        q = np.minimum(base * scale / base.mean(), 0.95)
        scale *= p / q.mean()
    x = draw(q)
    y = draw(rng.permutation(q))
    half = d // 2
    keep = rng.random((n, half), dtype=np.float32) < 0.9
    y[:, :half] = x[:, :half] * keep * rng.uniform(0.5, 1.5, (n, half)).astype(np.float32)
    return sp.csr_matrix(x), sp.csr_matrix(y)


def save(path: Path, m: sp.csr_matrix) -> None:
    np.savez(path, data=m.data, indices=m.indices, indptr=m.indptr, shape=np.array(m.shape))


def load(path: Path) -> sp.csr_matrix:
    with np.load(path) as z:
        return sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))


def _timed_matches(fn, x_path: Path, y_path: Path, out: Path, threads: int, k: int) -> dict:
    """Time `fn` (a top-k matcher) on the stored inputs, after a small warm-up call; save its matches."""
    x, y = load(x_path), load(y_path)
    fn(x[:2000, :64], y[:2000, :64], k=k, threads=threads)  # compile (cached) outside the timing
    t = time.perf_counter()
    m = fn(x, y, k=k, threads=threads)
    wall = time.perf_counter() - t
    np.savez(out, fwd_idx=m.fwd_idx, fwd_corr=m.fwd_corr, bwd_idx=m.bwd_idx, bwd_corr=m.bwd_corr)
    return {"wall_s": wall, "threads": threads, "top_k": k}


def run_ours(x_path: Path, y_path: Path, out: Path, threads: int, k: int) -> dict:
    from featureflow.flow.correlate_numba import top_k_matches

    return _timed_matches(top_k_matches, x_path, y_path, out, threads, k)


def run_dense(x_path: Path, y_path: Path, out: Path, threads: int, k: int) -> dict:
    """The dense path (featureflow.flow.correlate_dense): float64 GEMMs in blocks on the CPU."""
    from featureflow.flow.correlate_dense import top_k_matches_dense

    return _timed_matches(top_k_matches_dense, x_path, y_path, out, threads, k)


def run_torch(x_path: Path, y_path: Path, out: Path, k: int) -> dict:
    """The GPU path (featureflow.flow.correlate_torch): cuSPARSE products in float64, top-k on the device."""
    import torch

    from featureflow.flow.correlate_torch import top_k_matches_torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    x, y = load(x_path), load(y_path)
    top_k_matches_torch(x[:2000, :64], y[:2000, :64], k=k, device=device)  # CUDA context and kernels outside the timing
    t = time.perf_counter()
    m = top_k_matches_torch(x, y, k=k, device=device)
    wall = time.perf_counter() - t
    np.savez(out, fwd_idx=m.fwd_idx, fwd_corr=m.fwd_corr, bwd_idx=m.bwd_idx, bwd_corr=m.bwd_corr)
    return {"wall_s": wall, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "top_k": k}


def run_null(x_path: Path, y_path: Path, threads: int, context: int) -> dict:
    """One pass of the shuffle null (featureflow.flow.null) on the stored inputs: B's contexts shifted."""
    from featureflow.flow.null import Shuffle, null_best_partners, null_thresholds
    from featureflow.settings import CorrelationSettings, Resources

    x, y = load(x_path), load(y_path)
    blocks = np.zeros((x.shape[0] // context, context), dtype=np.int32)
    settings = CorrelationSettings(method="positional", top_k=1, engine="auto")
    resources = Resources.local("cpu", threads)
    null_best_partners(x[:2400], y[:2400], blocks[:100], settings, Shuffle(1, 0), resources)  # compile outside the timing
    t = time.perf_counter()
    null = null_best_partners(x, y, blocks, settings, Shuffle(1, 0), resources)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "threads": threads, "context": context, "thresholds": null_thresholds(null)}


def run_criteria(ours: Path, features: int, d_in: int) -> dict:
    """The other matching criteria (featureflow.flow.matching) at the paper's width."""
    import torch

    from featureflow.flow.matches import Matches
    from featureflow.flow.matching import decoder_cosine_matches, one_to_one

    with np.load(ours) as z:
        m = Matches(z["fwd_idx"], z["fwd_corr"], z["bwd_idx"], z["bwd_corr"], np.ones(len(z["fwd_idx"]), bool),
                    np.ones(len(z["bwd_idx"]), bool), 0)
    t = time.perf_counter()
    o = one_to_one(m)
    o2o = time.perf_counter() - t
    g = torch.Generator().manual_seed(0)
    w_a, w_b = torch.randn(features, d_in, generator=g), torch.randn(features, d_in, generator=g)
    t = time.perf_counter()
    decoder_cosine_matches(w_a, w_b, k=3)
    dec = time.perf_counter() - t
    matched = int((o.fwd_idx[:, 0] >= 0).sum())
    return {"one_to_one_s": o2o, "one_to_one_matched": matched, "decoder_cosine_s": dec, "d_in": d_in,
            "threads": torch.get_num_threads()}


def run_scipy(x_path: Path, y_path: Path, out: Path) -> dict:
    """Plain scipy: sparse X.T @ Y, then the Pearson normalisation on the dense a x b result."""
    from featureflow.flow.correlate_numba import column_moments

    x, y = load(x_path), load(y_path)
    t = time.perf_counter()
    n = x.shape[0]
    cross = (x.T.tocsr() @ y).toarray().astype(np.float64)
    mx, sx = column_moments(x)
    my, sy = column_moments(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (cross / n - np.outer(mx, my)) / np.outer(sx, sy)
    r = np.nan_to_num(r, nan=-np.inf)
    fwd_idx, bwd_idx = r.argmax(1), r.argmax(0)
    fwd_corr, bwd_corr = r.max(1), r.max(0)
    wall = time.perf_counter() - t
    np.savez(out, fwd_idx=fwd_idx, fwd_corr=fwd_corr, bwd_idx=bwd_idx, bwd_corr=bwd_corr)
    return {"wall_s": wall, "threads": 1}


def run_pairs(x_path: Path, y_path: Path, out: Path, pairs: int) -> dict:
    """The paper code's approach: scipy.stats.pearsonr per pair of dense columns in a Python loop."""
    from scipy.stats import pearsonr

    x, y = load(x_path).tocsc(), load(y_path).tocsc()
    rng = np.random.default_rng(0)
    cols_a, cols_b = rng.integers(0, x.shape[1], pairs), rng.integers(0, y.shape[1], pairs)
    dense_a = {i: x[:, i].toarray().ravel() for i in set(cols_a.tolist())}
    dense_b = {j: y[:, j].toarray().ravel() for j in set(cols_b.tolist())}
    t = time.perf_counter()
    for i, j in zip(cols_a, cols_b, strict=True):
        pearsonr(dense_a[i], dense_b[j])
    per_pair = (time.perf_counter() - t) / pairs
    return {"per_pair_s": per_pair, "pairs_timed": pairs, "extrapolated_wall_s": per_pair * x.shape[1] * y.shape[1],
            "threads": 1, "note": "extrapolated from the timed subset of pairs (dense columns prepared outside the timing)"}


def peak_rss_gb() -> float:
    """This process's peak RSS. VmHWM starts afresh at exec; ru_maxrss also counts the forking parent's."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child(args: argparse.Namespace) -> None:
    work = Path(args.work)
    fn = {"ours": lambda: run_ours(work / "x.npz", work / "y.npz", work / "ours.npz", args.threads, args.top_k),
          "scipy": lambda: run_scipy(work / "x.npz", work / "y.npz", work / "scipy.npz"),
          "dense": lambda: run_dense(work / "x.npz", work / "y.npz", work / "dense.npz", args.threads, args.top_k),
          "torch": lambda: run_torch(work / "x.npz", work / "y.npz", work / "torch.npz", args.top_k),
          "pairs": lambda: run_pairs(work / "x.npz", work / "y.npz", work / "pairs.npz", args.pairs),
          "null": lambda: run_null(work / "x.npz", work / "y.npz", args.threads, args.context),
          "criteria": lambda: run_criteria(work / "ours.npz", args.features, args.d_in)}[args.method]
    result = fn()
    result["peak_rss_gb"] = peak_rss_gb()
    print(json.dumps(result))


def in_child(method: str, args: argparse.Namespace, work: Path) -> dict:
    """Run one method in its own process (its own peak RSS) and return its result line."""
    cmd = [sys.executable, __file__, "--method", method, "--work", str(work), "--threads", str(args.threads),
           "--top-k", str(args.top_k), "--pairs", str(args.pairs), "--features", str(args.features),
           "--context", str(args.context), "--d-in", str(args.d_in)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{method} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def density_rows(args: argparse.Namespace) -> None:
    """Sparse kernel vs dense path at densities 0.1% .. 50%, the cost model's choice, and its refit."""
    from featureflow.flow import correlate_dense as cd

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    n, d, rows = args.density_tokens, args.density_features, []
    for p in (0.001, 0.01, 0.05, 0.2, 0.5):
        x, y = at_density(n, d, p, seed=0)
        save(work / "x.npz", x), save(work / "y.npz", y)
        madds = int(np.dot(np.diff(x.indptr).astype(np.int64), np.diff(y.indptr)))
        choice, est = cd.choose_engine(x, y, args.threads, "auto")
        row = {"density": p, "measured_density": x.nnz / (n * d), "nnz_x": int(x.nnz), "madds": madds,
               "estimate_s": est, "choice": choice}
        del x, y
        for method in ("ours", "dense"):
            row[{"ours": "sparse", "dense": "dense"}[method]] = in_child(method, args, work)
        a, b = np.load(work / "ours.npz"), np.load(work / "dense.npz")
        row["same_partners"] = bool(all((a[f] == b[f]).all() for f in ("fwd_idx", "bwd_idx")))
        row["max_abs_corr_diff"] = float(max(np.nanmax(np.abs(a[f] - b[f]), initial=0.0) for f in ("fwd_corr", "bwd_corr")))
        row["faster"] = "dense" if row["dense"]["wall_s"] < row["sparse"]["wall_s"] else "sparse"
        row["load_average_1min"] = os.getloadavg()[0]  # other work on the machine slows both paths
        rows.append(row)
        print(json.dumps(row), flush=True)
    # Refit the per-thread constants from these rows (thread-seconds = wall x threads): sparse =
    # fixed + nnz_x row + madds madd, least squares in relative error; dense: median per flop.
    t = args.threads
    lhs = np.array([[1.0, r["nnz_x"], r["madds"]] for r in rows])
    wall = np.array([r["sparse"]["wall_s"] for r in rows])
    sparse_fit = np.linalg.lstsq(lhs / wall[:, None], np.full(len(rows), float(t)), rcond=None)[0]
    dense_fit = np.median([((r["dense"]["wall_s"] - cd.DENSE_FIXED_S) * t - d * d * cd.PAIR_S) / (2.0 * n * d * d) for r in rows])
    predictions = []
    for tokens in (24_000, 3_000_000):
        for p in (0.001, 0.002, 0.01, 0.05, 0.2, 0.53):
            l0 = p * 16384
            est = cd.estimate_seconds(tokens, 16384, 16384, int(tokens * l0), int(tokens * l0 * l0), args.threads)
            predictions.append({"tokens": tokens, "features": 16384, "density": p, "l0": l0, "estimate_s": est,
                                "choice": min(est, key=est.get)})
    results = {"setup": {"tokens": n, "features": d, "threads": args.threads, "top_k": args.top_k},
               "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
               "constants": {"SPARSE_ROW_S": cd.SPARSE_ROW_S, "SPARSE_MADD_S": cd.SPARSE_MADD_S,
                             "DENSE_FLOP_S": cd.DENSE_FLOP_S, "PAIR_S": cd.PAIR_S, "DENSE_FIXED_S": cd.DENSE_FIXED_S},
               "refit": {"fixed_thread_s": float(sparse_fit[0]), "SPARSE_ROW_S": float(sparse_fit[1]),
                         "SPARSE_MADD_S": float(sparse_fit[2]), "DENSE_FLOP_S": float(dense_fit)},
               "load_average_1min": os.getloadavg()[0],
               "rows": rows, "paper_shape_predictions": predictions}
    out = Path(args.out or HERE / "results" / "correlation_density.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'density':>8} {'sparse s':>9} {'dense s':>8} {'faster':>7} {'model':>7} {'est sparse':>10} {'est dense':>9}")
    for r in rows:
        print(f"{r['measured_density']:8.4f} {r['sparse']['wall_s']:9.2f} {r['dense']['wall_s']:8.2f} {r['faster']:>7} "
              f"{r['choice']:>7} {r['estimate_s']['sparse']:10.2f} {r['estimate_s']['dense']:9.2f}")
    print(json.dumps(results["refit"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=3_000_000)
    ap.add_argument("--features", type=int, default=16384)
    ap.add_argument("--l0", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--skip-scipy", action="store_true")
    ap.add_argument("--methods", default="ours,pairs,scipy", help="of ours, pairs, scipy, torch (the GPU path), null, criteria")
    ap.add_argument("--context", type=int, default=24, help="context length of the null's shifts (the paper's 24)")
    ap.add_argument("--d-in", type=int, default=1024, help="decoder width for the criteria (the paper's d_mlp)")
    ap.add_argument("--work", default="/tmp/featureflow_corr_bench")
    ap.add_argument("--out", help="default: benchmarks/results/correlation.json (correlation_density.json with --density)")
    ap.add_argument("--density", action="store_true", help="sparse vs dense at densities 0.1%% .. 50%% (see above)")
    ap.add_argument("--density-tokens", type=int, default=20_000)
    ap.add_argument("--density-features", type=int, default=4096)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.method:
        return child(args)
    if args.density:
        return density_rows(args)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    x, y = synthetic(args.tokens, args.features, args.l0, seed=0)
    save(work / "x.npz", x), save(work / "y.npz", y)
    setup = {"tokens": args.tokens, "features": args.features, "nnz_a": int(x.nnz), "nnz_b": int(y.nnz),
             "mean_l0_a": x.nnz / x.shape[0], "mean_l0_b": y.nnz / y.shape[0],
             "multiply_adds": int(np.dot(np.diff(x.indptr).astype(np.int64), np.diff(y.indptr))),
             "density_percentiles_a": np.percentile(np.diff(x.tocsc().indptr) / x.shape[0], [1, 50, 99]).tolist(),
             "generate_s": time.perf_counter() - t}
    del x, y
    print(json.dumps(setup), flush=True)
    results = {"setup": setup, "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()}}
    methods = [m for m in args.methods.split(",") if not (args.skip_scipy and m == "scipy")]
    for method in methods:
        results[method] = in_child(method, args, work)
        print(method, results[method], flush=True)
    ours = np.load(work / "ours.npz")
    half = args.features // 2
    results["ours"]["copies_found"] = float((ours["bwd_idx"][:half, 0] == np.arange(half)).mean())
    if "scipy" in results:
        ref = np.load(work / "scipy.npz")
        results["agreement_with_scipy"] = {
            "fwd_same_partner": float((ours["fwd_idx"][:, 0] == ref["fwd_idx"]).mean()),
            "bwd_same_partner": float((ours["bwd_idx"][:, 0] == ref["bwd_idx"]).mean()),
            "max_abs_corr_diff": float(np.nanmax(np.abs(np.nan_to_num(ours["fwd_corr"][:, 0], nan=-np.inf) - ref["fwd_corr"])))}
        results["speedup_vs_scipy"] = results["scipy"]["wall_s"] / results["ours"]["wall_s"]
    if "torch" in results:
        gpu = np.load(work / "torch.npz")
        diff = [np.abs(gpu[f] - ours[f]) for f in ("fwd_corr", "bwd_corr")]
        results["torch_vs_ours"] = {
            "same_top_k_partners_fwd": float((gpu["fwd_idx"] == ours["fwd_idx"]).all(axis=1).mean()),
            "same_top_k_partners_bwd": float((gpu["bwd_idx"] == ours["bwd_idx"]).all(axis=1).mean()),
            "max_abs_corr_diff": float(max(np.nanmax(d) for d in diff)),
            "speedup": results["ours"]["wall_s"] / results["torch"]["wall_s"]}
    if "null" in results:
        results["null_pass_vs_ours"] = results["null"]["wall_s"] / results["ours"]["wall_s"]
    if "pairs" in results:
        results["speedup_vs_pairs_extrapolated"] = results["pairs"]["extrapolated_wall_s"] / results["ours"]["wall_s"]
    out = Path(args.out or HERE / "results" / "correlation.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
