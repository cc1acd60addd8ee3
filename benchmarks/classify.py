"""classify's lineage counts and the Sankey's ends at paper size, against the per-feature groupby-apply
they replaced (run side by side on the same table).

The paper's lineage (a base, two fine-tunes, their merge: four edges) at 16,384 features, with random
top-3 partners and correlations: the edges table has a row per feature per edge side (131,072 rows).
Times `classify_lineage` (the table), `lineage_counts` and the Sankey's `emerged_and_gone` of every
model, and the two counts as a `groupby(...).apply(lambda)` per feature computed them before; checks
both give the same numbers. Writes benchmarks/results/classify.json.

    .venv/bin/python benchmarks/classify.py [--features 16384] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from featureflow.flow.classes import FlowSpec, classify_lineage, lineage_counts  # noqa: E402
from featureflow.flow.matches import Matches, save_matches  # noqa: E402
from featureflow.flow.sankey import emerged_and_gone  # noqa: E402

SPEC = {"edges": [{"source": "babypython", "target": "lua", "kind": "finetune"},
                  {"source": "babypython", "target": "tinystories", "kind": "finetune"},
                  {"source": "lua", "target": "luastories", "kind": "merge"},
                  {"source": "tinystories", "target": "luastories", "kind": "merge"}],
        "inputs": {"babypython": [], "lua": ["babypython"], "tinystories": ["babypython"], "luastories": ["lua", "tinystories"]},
        "roots": ["babypython"]}
MODELS = ("babypython", "lua", "tinystories", "luastories")


def random_matches(d_sae: int, rng: np.random.Generator, k: int = 3) -> Matches:
    """Top-k partners both ways with correlations spread over [0, 1), best first; 5% of features inactive."""
    def side() -> tuple[np.ndarray, np.ndarray]:
        idx = rng.integers(0, d_sae, (d_sae, k)).astype(np.int32)
        corr = -np.sort(-rng.random((d_sae, k), dtype=np.float32), axis=1)
        return idx, corr
    return Matches(*side(), *side(), rng.random(d_sae) > 0.05, rng.random(d_sae) > 0.05, 100_000)


def per_feature_apply(edges: pd.DataFrame, model: str) -> tuple[int | None, int | None, int | None]:
    """The counts as they were computed before: a Python lambda per feature group."""
    tgt, src = edges[(edges["side"] == "target") & (edges["model"] == model)], edges[(edges["side"] == "source") & (edges["model"] == model)]
    emerged = int(tgt.groupby("feature")["class"].apply(lambda c: (c == "emerging").all()).sum()) if len(tgt) else None
    gone = int(src.groupby("feature")["class"].apply(lambda c: (c == "disappearing").all()).sum()) if len(src) else None
    into = src[src["kind"] == "finetune"]
    persisting = int(into.groupby("feature")["class"].apply(lambda c: (c == "persisting").any()).sum()) if len(into) else None
    return emerged, gone, persisting


def vectorised(edges: pd.DataFrame, model: str) -> tuple[int | None, int | None, int | None]:
    emerged, gone = emerged_and_gone(edges, model)
    src = edges[(edges["side"] == "source") & (edges["model"] == model) & (edges["kind"] == "finetune")]
    persisting = int((src["class"] == "persisting").groupby(src["feature"]).any().sum()) if len(src) else None
    return emerged, gone, persisting


def timed(fn: Any, repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return round(best, 3), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", type=int, default=16384)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks/results/classify.json")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for e in SPEC["edges"]:
            name = f"{e['source']}__{e['target']}"
            files[name] = Path(tmp) / f"{name}.npz"
            save_matches(files[name], random_matches(args.features, rng), {"source": e["source"], "target": e["target"]})
        spec = FlowSpec.from_dict(SPEC)
        t_table, edges = timed(lambda: classify_lineage(files, spec, 0.8), args.repeats)
    t_counts, _ = timed(lambda: lineage_counts(edges, spec), args.repeats)
    t_new, new = timed(lambda: [vectorised(edges, m) for m in MODELS], args.repeats)
    t_old, old = timed(lambda: [per_feature_apply(edges, m) for m in MODELS], args.repeats)
    assert new == old, (new, old)
    result = {"features": args.features, "edge_rows": len(edges), "classify_lineage_s": t_table, "lineage_counts_s": t_counts,
              "sankey_and_persisting_counts_vectorised_s": t_new, "sankey_and_persisting_counts_per_feature_apply_s": t_old,
              "speedup": round(t_old / t_new, 1), "counts": dict(zip(MODELS, new, strict=True))}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
