"""Classify features along the lineage at a correlation threshold, and count them as the paper does.

Per edge (source -> target; parent -> child or merge input -> merged model), a feature is
- persisting: it has a partner on the other side with correlation above `threshold` (strictly),
- disappearing: a source feature without such a partner,
- emerging: a target feature without such a partner,
- inactive: it never fires (or is constant) on the common sample, so it has no correlation at all.

This module is the only consumer of the threshold; the correlation files it reads are
threshold-free, so a new threshold reruns only this stage and the figures after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featureflow import paper as paper_numbers
from featureflow.flow.controls import ControlFiles, add_share_of_ceiling, control_rows
from featureflow.flow.matches import Matches, above_threshold, load_matches
from featureflow.flow.null import resolve_threshold
from featureflow.lineage import edge_name

log = logging.getLogger(__name__)
EDGE_COLUMNS = ["edge", "kind", "source", "target", "side", "model", "feature", "active", "partner", "corr",
                "partners_above", "class", "partner_inherited"]


@dataclass
class FlowSpec:
    """What classify needs to know about the lineage (plain data, passed as a rule param)."""

    edges: list[dict[str, str]]        # [{"source", "target", "kind"}] in lineage order
    inputs: dict[str, list[str]]       # model -> the models it was made from
    roots: list[str]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowSpec:
        return cls(edges=list(d["edges"]), inputs={k: list(v) for k, v in d["inputs"].items()}, roots=list(d["roots"]))


def counts_threshold(counts_csv: str | Path) -> float:
    """The number classify compared with (a `null-<rate>` threshold resolved), from its counts.csv."""
    return float(pd.read_csv(counts_csv)["threshold"].iloc[0])


def side_classes(active: np.ndarray, corr: np.ndarray, side: str, threshold: float) -> np.ndarray:
    """Each feature's class on one side ("source" or "target") of an edge from its top-k partners'
    correlations `corr` [n, k]; the feature browser's `featureClass` (browser.js) mirrors it."""
    other = {"source": "disappearing", "target": "emerging"}[side]
    return np.where(~np.asarray(active, dtype=bool), "inactive", np.where(above_threshold(corr, threshold).any(1), "persisting", other))


def _side_rows(idx: np.ndarray, corr: np.ndarray, active: np.ndarray, threshold: float, side: str) -> pd.DataFrame:
    return pd.DataFrame({"feature": np.arange(len(idx)), "active": active, "partner": idx[:, 0], "corr": corr[:, 0],
                         "partners_above": above_threshold(corr, threshold).sum(1), "class": side_classes(active, corr, side, threshold)})


def classify_edge(m: Matches, source: str, target: str, kind: str, threshold: float) -> pd.DataFrame:
    """One row per feature of the source and per feature of the target, with its class on this edge."""
    frames = []
    for side, model, idx, corr, active in (("source", source, m.fwd_idx, m.fwd_corr, m.active_a),
                                           ("target", target, m.bwd_idx, m.bwd_corr, m.active_b)):
        df = _side_rows(idx, corr, active, threshold, side)
        df.insert(0, "model", model)
        df.insert(0, "side", side)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "target", target)
    out.insert(0, "source", source)
    out.insert(0, "kind", kind)
    out.insert(0, "edge", edge_name(source, target))
    return out


def classify_lineage(corr_files: dict[str, str | Path], spec: FlowSpec, threshold: float) -> pd.DataFrame:
    """Classes of every feature on every edge, with `partner_inherited`: for a persisting target
    feature, whether one of its above-threshold partners itself persisted from the source's inputs."""
    matches = {name: load_matches(path)[0] for name, path in corr_files.items()}
    inherited: dict[str, np.ndarray] = {}  # model -> bool per feature: persists from one of its inputs
    frames = []
    for e in spec.edges:  # lineage order: a source's own incoming edges come before its outgoing ones
        name = edge_name(e["source"], e["target"])
        m = matches[name]
        df = classify_edge(m, e["source"], e["target"], e["kind"], threshold)
        src_inherited = inherited.get(e["source"], np.zeros(m.fwd_idx.shape[0], dtype=bool))
        above = above_threshold(m.bwd_corr, threshold)
        partner_inh = (above & src_inherited[np.maximum(m.bwd_idx, 0)]).any(1)
        df["partner_inherited"] = False
        df.loc[df["side"] == "target", "partner_inherited"] = partner_inh
        frames.append(df)
        persists = above.any(1)
        inherited[e["target"]] = inherited.get(e["target"], np.zeros_like(persists)) | persists
    return pd.concat(frames, ignore_index=True)[EDGE_COLUMNS]


def lineage_counts(edges: pd.DataFrame, spec: FlowSpec) -> pd.DataFrame:
    """The counts of the paper's section 4.1 for this lineage, per edge and per model, with the
    paper's number (and share of its 16384 features) beside ours where the role matches."""
    rows: list[dict[str, Any]] = []
    d_sae = edges.groupby("model")["feature"].max() + 1

    def add(quantity: str, model: str, ours: int, role: str | None = None, edge: str = "") -> None:
        paper = paper_numbers.COUNTS.get(role) if role else None
        rows.append({"quantity": quantity, "model": model, "edge": edge, "ours": int(ours), "d_sae": int(d_sae[model]),
                     "ours_share": round(ours / d_sae[model], 4), "paper": paper,
                     "paper_share": round(paper / paper_numbers.SCALE["d_sae"], 4) if paper is not None else None})

    for (edge, side), df in edges.groupby(["edge", "side"], sort=False):
        for cls in ("persisting", "disappearing" if side == "source" else "emerging", "inactive"):
            add(f"{side} features {cls}", df["model"].iat[0], (df["class"] == cls).sum(), edge=edge)
    src = edges[edges["side"] == "source"]
    tgt = edges[edges["side"] == "target"]
    for model in dict.fromkeys(src.loc[src["kind"] == "finetune", "model"]):
        into = src[(src["model"] == model) & (src["kind"] == "finetune")]
        n = (into["class"] == "persisting").groupby(into["feature"]).any().sum()
        add("features persisting into any fine-tuned child", model, n,
            "persist_into_any_child" if model in spec.roots else None)
    for model in dict.fromkeys(tgt.loc[tgt["kind"] == "merge", "model"]):
        rows_in = tgt[(tgt["model"] == model) & (tgt["kind"] == "merge")]
        per_feature = rows_in.assign(traced=rows_in["class"] == "persisting").groupby("feature").agg(
            traced=("traced", "any"), inherited=("partner_inherited", "any"))
        traced = per_feature["traced"]
        add("features traceable to a merge input", model, traced.sum(), "traceable_to_inputs")
        add("  of which emerged in the inputs (fine-tuning)", model, (traced & ~per_feature["inherited"]).sum(),
            "traceable_emerged_in_inputs")
        add("  of which persisted from the inputs' ancestors", model, (traced & per_feature["inherited"]).sum(),
            "traceable_persisted_from_ancestors")
    return pd.DataFrame(rows)


def classify(corr_files: dict[str, str | Path], spec: dict[str, Any], threshold: float | str,
             controls: dict[str, dict[str, str]], out_edges: str | Path, out_counts: str | Path) -> pd.DataFrame:
    """The `classify` stage: write edges.csv (one row per feature per edge) and counts.csv, with the
    controls' rows and each persisting share relative to the SAE seed ceiling when controls ran.
    `threshold` is a number or `null-<rate>` (resolved from the edges' shuffle nulls)."""
    flow_spec, control_files = FlowSpec.from_dict(spec), ControlFiles.from_dict(controls)
    threshold = resolve_threshold(threshold, control_files.null)
    edges = classify_lineage(corr_files, flow_spec, threshold)
    edges.to_csv(out_edges, index=False, float_format="%.6g")
    counts = lineage_counts(edges, flow_spec)
    if control_files:
        counts = add_share_of_ceiling(pd.concat([counts, pd.DataFrame(control_rows(control_files, threshold))],
                                                ignore_index=True))
    counts.insert(0, "threshold", threshold)
    counts.to_csv(out_counts, index=False)
    log.info("threshold %g\n%s", threshold, counts.to_string(index=False))
    return counts
