"""classify's lineage counts and the Sankey's ends at paper size, against the per-feature groupby-apply
they replaced (run side by side on the same table).

The paper's lineage (a base, two fine-tunes, their merge: four edges) at 16,384 features, with random
top-3 partners and correlations: the edges table has a row per feature per edge side (131,072 rows).
Times `classify_lineage` (the table), `lineage_counts`, and the Sankey's `emerged_and_gone` of every
model with `lineage_counts` against the per-feature counts computed as a `groupby(...).apply(lambda)`
before (the reference does less: only those counts); checks both give the same numbers. Writes
benchmarks/results/classify.json.

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


def per_feature_apply(edges: pd.DataFrame) -> dict[str, tuple[int | None, ...]]:
    """The per-feature counts as they were computed before: a Python lambda per feature group. Per
    model: (emerged, disappeared, persisting into any fine-tuned child, traceable to a merge input)."""
    out = {}
    for model in MODELS:
        tgt, src = (edges[(edges["side"] == side) & (edges["model"] == model)] for side in ("target", "source"))
        into, merged = src[src["kind"] == "finetune"], tgt[tgt["kind"] == "merge"]
        out[model] = (
            int(tgt.groupby("feature")["class"].apply(lambda c: (c == "emerging").all()).sum()) if len(tgt) else None,
            int(src.groupby("feature")["class"].apply(lambda c: (c == "disappearing").all()).sum()) if len(src) else None,
            int(into.groupby("feature")["class"].apply(lambda c: (c == "persisting").any()).sum()) if len(into) else None,
            int(merged.groupby("feature").agg(traced=("class", lambda c: (c == "persisting").any()))["traced"].sum())
            if len(merged) else None)
    return out


def current(edges: pd.DataFrame, spec: FlowSpec) -> dict[str, tuple[int | None, ...]]:
    """The same counts from the code the workflow runs: the Sankey's `emerged_and_gone` and the whole of
    `lineage_counts` (which also counts every edge's classes: more work than the reference above)."""
    counts = lineage_counts(edges, spec).set_index(["quantity", "model"])["ours"]

    def row(quantity: str, model: str) -> int | None:
        return int(counts[(quantity, model)]) if (quantity, model) in counts.index else None

    return {m: (*emerged_and_gone(edges, m), row("features persisting into any fine-tuned child", m),
                row("features traceable to a merge input", m)) for m in MODELS}


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
    t_new, new = timed(lambda: current(edges, spec), args.repeats)
    t_old, old = timed(lambda: per_feature_apply(edges), args.repeats)
    assert new == old, (new, old)
    result = {"features": args.features, "edge_rows": len(edges), "classify_lineage_s": t_table, "lineage_counts_s": t_counts,
              "sankey_ends_and_lineage_counts_s": t_new, "per_feature_apply_reference_s": t_old,
              "speedup": round(t_old / t_new, 1), "counts": new,
              "counts_order": ["emerged", "disappeared", "persisting into any fine-tuned child", "traceable to a merge input"]}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
