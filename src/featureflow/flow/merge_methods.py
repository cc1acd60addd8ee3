"""Merge methods compared (experiments.merge_methods): one row per merged model of the same two inputs.

Every listed method gets a merged model of its own (``<merged>-<method>``, a model of the lineage
like any other, so it has a sweep, a t, an SAE and edges), and this table sets them side by side::

    merged, method, t, accuracy on each input's domain (and relative to the input),
    share of each input's features persisting into the merge, share of the merge's features
    traceable to an input, and emerging (active, with no partner above the threshold in either input)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)


def _emerging(edges: pd.DataFrame, model: str) -> tuple[int, int, int]:
    """(traceable, emerging, d_sae) of a merged model's features, over both of its merge edges."""
    tgt = edges[(edges["model"] == model) & (edges["side"] == "target") & (edges["kind"] == "merge")]
    per = tgt.groupby("feature")["class"].agg(lambda c: "persisting" if (c == "persisting").any()
                                             else "inactive" if (c == "inactive").all() else "emerging")
    d_sae = int(edges.loc[edges["model"] == model, "feature"].max()) + 1
    return int((per == "persisting").sum()), int((per == "emerging").sum()), d_sae


def merge_method_rows(groups: dict[str, list[str]], choices: dict[str, str | Path], edges_csv: str | Path) -> pd.DataFrame:
    """The comparison table: `groups` maps each configured merged model to its merged models (itself
    first, then one per compared method); `choices` every merged model's choice.json."""
    edges = pd.read_csv(edges_csv)
    rows: list[dict[str, Any]] = []
    for group, models in groups.items():
        for model in models:
            c = json.loads(Path(choices[model]).read_text())
            first, second = list(c["merged_accuracy"])
            traced, emerging, d_sae = _emerging(edges, model)
            row = {"merged": group, "model": model, "method": c["method"], "t": round(c["t"], 4)}
            for n in (first, second):
                src = edges[(edges["model"] == n) & (edges["side"] == "source") & (edges["edge"] == f"{n}__{model}")]
                row |= {f"accuracy[{n}]": round(c["merged_accuracy"][n], 4), f"vs_input[{n}]": round(c["merged_vs_input"][n], 4),
                        f"persisting_from[{n}]": round(float((src["class"] == "persisting").mean()), 4)}
            row |= {"traceable": round(traced / d_sae, 4), "emerging": round(emerging / d_sae, 4)}
            rows.append(row)
    return pd.DataFrame(rows)


def merge_method_figure(rows: pd.DataFrame, threshold: float) -> Any:
    """Per method: the share of each input's features persisting into its merge, and of the merge's emerging."""
    import plotly.graph_objects as go

    from featureflow.plotting import COLOURS

    labels = [f"{m} ({meth}, t={t:g})" for m, meth, t in zip(rows["model"], rows["method"], rows["t"], strict=True)]
    bars = [c for c in rows.columns if c.startswith("persisting_from[")] + ["emerging"]
    fig = go.Figure([go.Bar(name=c.replace("persisting_from[", "persisting from ").rstrip("]"), x=labels, y=rows[c],
                            marker_color=COLOURS[i % len(COLOURS)]) for i, c in enumerate(bars)])
    fig.update_layout(barmode="group", template="plotly_white", yaxis_title="share of the SAE's features",
                      title=f"Merge methods compared (threshold {threshold:g}): what each merge keeps and what emerges")
    return fig


def write_merge_methods(groups: dict[str, list[str]], choices: dict[str, str], edges_csv: str, counts_csv: str,
                        out: dict[str, str]) -> pd.DataFrame:
    """The `merge_methods` rule: the table (out["csv"]) and its figure (out["html"], out["png"]), at the
    threshold classify used (counts.csv)."""
    from featureflow.flow.classes import counts_threshold
    from featureflow.plotting import save_figure

    rows = merge_method_rows(groups, choices, edges_csv)
    rows.to_csv(out["csv"], index=False)
    save_figure(merge_method_figure(rows, counts_threshold(counts_csv)), out["html"], out["png"])
    log.info("merge methods\n%s", rows.to_string(index=False))
    return rows
