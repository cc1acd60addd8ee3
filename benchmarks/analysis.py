"""Feature statistics and the feature browser at paper size, on synthetic activations.

Paper size: 16384 features, 3M sample positions in 24-token blocks, ~30 active features per
position with densities spread log-normally (as benchmarks/correlation.py draws them), a vocabulary
of 32000. Times `feature_stats` (density, histogram, top contexts, top tokens), the LLR of one
hypothesis, and the browser pages of one model (its index, 64 chunk files, contexts); the browser
of the four-model lineage is four times that plus the shared assets. Writes
benchmarks/results/analysis.json.

    .venv/bin/python benchmarks/analysis.py [--positions 3000000] [--features 16384]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from featureflow.analysis.browser import ModelPage, write_assets, write_model_pages  # noqa: E402
from featureflow.analysis.features import StatsSizes, feature_stats, llr_scores  # noqa: E402
from featureflow.settings import BrowserSettings  # noqa: E402


def synthetic(positions: int, features: int, l0: int, vocab: int, seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    density = rng.lognormal(0, 1.5, features)
    density /= density.sum()
    cols = rng.choice(features, size=positions * l0, p=density).astype(np.int32)
    rows = np.repeat(np.arange(positions, dtype=np.int64), l0)
    vals = rng.exponential(1.0, positions * l0).astype(np.float32)
    acts = sp.csr_matrix((vals, (rows, cols)), shape=(positions, features))
    acts.sum_duplicates()
    tokens = np.minimum(rng.zipf(1.3, positions) - 1, vocab - 1)
    return acts, tokens


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--positions", type=int, default=3_000_000)
    ap.add_argument("--features", type=int, default=16384)
    ap.add_argument("--l0", type=int, default=30)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/analysis.json"))
    args = ap.parse_args()
    vocab, context = 32000, 24
    t = time.perf_counter()
    acts, tokens = synthetic(args.positions, args.features, args.l0, vocab)
    result = {"positions": args.positions, "features": args.features, "nnz": int(acts.nnz), "vocab": vocab,
              "synthesis_s": round(time.perf_counter() - t, 1)}
    t = time.perf_counter()
    stats = feature_stats(acts, tokens, vocab, StatsSizes(top_contexts=20, top_tokens=10, min_token_count=5, bins=20))
    result["feature_stats_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    llr = llr_scores(acts, tokens, np.array([5, 17]))
    result["llr_one_hypothesis_s"] = round(time.perf_counter() - t, 1)
    n_blocks = args.positions // context
    sample = {"blocks": tokens[:n_blocks * context].reshape(n_blocks, context), "corpus": np.zeros(n_blocks, dtype=np.int16),
              "start": np.zeros(n_blocks, dtype=np.int64), "corpora": np.array(["synthetic"])}
    rng = np.random.default_rng(1)
    partner = {"idx": rng.integers(0, args.features, (args.features, 3)).astype(np.int32),
               "corr": np.sort(rng.random((args.features, 3)).astype(np.float32), axis=1)[:, ::-1],
               "active": np.ones(args.features, dtype=bool)}
    edges = [{"label": "-> child", "side": "source", "other": "child", **partner},
             {"label": "<- parent", "side": "target", "other": "parent", **partner}]
    table = pd.DataFrame({"feature": np.arange(args.features), "llr_assignment": llr["llr"]})
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_assets(tmp, [f"tok{i}" for i in range(vocab)])
        result["browser_assets_s"] = round(time.perf_counter() - t, 1)
        result["browser_assets_mb"] = round(sum(p.stat().st_size for p in Path(tmp).rglob("*")) / 1e6, 1)
        t = time.perf_counter()
        write_model_pages("model", tmp, ModelPage(stats=stats, table=table, edges=edges, acts=acts), sample,
                          BrowserSettings(hypotheses=("assignment",), contexts=8, window=8))
        result["browser_one_model_s"] = round(time.perf_counter() - t, 1)
        files = list((Path(tmp) / "model").rglob("*"))
        result["browser_one_model_mb"] = round(sum(p.stat().st_size for p in files if p.is_file()) / 1e6, 1)
        result["browser_one_model_files"] = sum(p.is_file() for p in files)
        chunk = Path(tmp) / "model/data/chunk_00000.js"
        result["feature_page_chunk_kb"] = round(chunk.stat().st_size / 1e3, 1)
    result["lineage_of_4_estimate"] = {"minutes": round((4 * (result["feature_stats_s"] + result["llr_one_hypothesis_s"] * 2
                                                              + result["browser_one_model_s"]) + result["browser_assets_s"]) / 60, 1),
                                       "browser_mb": round(4 * result["browser_one_model_mb"] + result["browser_assets_mb"], 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
