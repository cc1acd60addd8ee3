"""Dictionary-width sweep (experiments.widths): the persisting share along every edge against the SAE's width.

Every model of the sweep has an SAE at each listed expansion factor, trained with the lineage's
recipe (only the width changes; the lineage's own width is its own SAE), and each edge is
correlated at each width exactly as the lineage's edges are: per edge and width the columns of
featureflow.flow.sweeps (persisting share, share of the seed ceiling at that width, both SAEs' quality),
and per model and width (widths_saes.csv) the SAE's metrics and its seed ceiling. A wider dictionary
splits features, and a split need not fall the same way in two SAEs even of one model: the ceiling
at each width measures that, so share_of_ceiling is the part of the curve the models account for. Classes come from the same comparison
as classify's (classes.classify_edge on the best partners), at the lineage's threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from featureflow.flow.sweeps import Sweep, sweep_edge_rows, sweep_sae_rows, write_sweep


@dataclass(frozen=True)
class WidthSpec:
    """The sweep: its expansion factors (the lineage's own, `own`, among them), the models and the edges
    ({"source", "target", "kind"}, lineage order) it covers, and the threshold of persisting."""

    widths: list[int]
    own: int
    models: list[str]
    edges: list[dict[str, str]]
    threshold: float
    l1_coefficients: dict[int, float] = field(default_factory=dict)  # width -> the L1 coefficient its SAEs trained with

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WidthSpec:
        return cls(widths=[int(w) for w in d["widths"]], own=int(d["own"]), models=list(d["models"]),
                   edges=[dict(e) for e in d["edges"]], threshold=float(d["threshold"]),
                   l1_coefficients={int(w): float(v) for w, v in (d.get("l1_coefficients") or {}).items()})

    def sweep(self) -> Sweep:
        """The sweep's variants are its widths."""
        return Sweep(key="width", variants=self.widths, own=self.own, models=self.models, edges=self.edges, threshold=self.threshold)


def width_sae_rows(spec: WidthSpec, metrics_files: dict[str, dict[str, str]],
                   ceiling_files: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """One row per model and width (featureflow.flow.sweeps.sweep_sae_rows), with the width's L1 coefficient."""
    return sweep_sae_rows(spec.sweep(), metrics_files, ceiling_files,
                          lambda w, _model: {"l1_coefficient": spec.l1_coefficients.get(w)})


def width_edge_rows(spec: WidthSpec, corr_files: dict[str, dict[str, str]], saes: pd.DataFrame) -> pd.DataFrame:
    """One row per edge and width (featureflow.flow.sweeps.sweep_edge_rows)."""
    return sweep_edge_rows(spec.sweep(), corr_files, saes)


def _marker(meets: bool, far_off: str) -> str:
    return "x" if far_off else "circle" if meets else "circle-open"


def width_figure(edges: pd.DataFrame, saes: pd.DataFrame, threshold: float) -> Any:
    """Three panels against the width: the persisting share per edge (filled: both SAEs meet the paper's
    targets, open: one misses them, x: one is far off) with the seed ceilings (dashed), and each model's
    SAE L0 and explained loss with the paper's targets."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from featureflow import paper
    from featureflow.plotting import COLOURS

    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.08, subplot_titles=(
        f"source features persisting (corr > {threshold:g})", f"SAE L0 (paper: {paper.SAE_TARGETS['l0']})",
        f"SAE explained loss (paper: {paper.SAE_TARGETS['explained_loss']})"))
    for i, (name, df) in enumerate(edges.groupby("edge", sort=False)):
        fig.add_trace(go.Scatter(x=df["width"], y=df["persisting_share"], name=name.replace("__", " → "), mode="lines+markers",
                                 line={"color": COLOURS[i % len(COLOURS)]}, legendgroup="edges", legendgrouptitle_text="edges",
                                 marker={"size": 10, "symbol": [_marker(m, f) for m, f in zip(df["meets_targets"], df["far_off"], strict=True)]},
                                 customdata=df[["persisting", "d_sae", "far_off"]],
                                 hovertemplate="x%{x}: %{y:.1%} (%{customdata[0]} of %{customdata[1]})<br>%{customdata[2]}"),
                      row=1, col=1)
    for model, df in saes[saes["seed_ceiling"].notna()].groupby("model", sort=False):
        fig.add_trace(go.Scatter(x=df["width"], y=df["seed_ceiling"], name=f"{model}: seed ceiling", mode="lines+markers",
                                 line={"color": "#000000", "dash": "dash"}, legendgroup="edges",
                                 hovertemplate="x%{x}: %{y:.1%} of its active features found again by an SAE of another seed"),
                      row=1, col=1)
    for i, (model, df) in enumerate(saes.groupby("model", sort=False)):
        style = {"line": {"color": COLOURS[(i + 3) % len(COLOURS)], "dash": "dot"}, "legendgroup": "saes",
                 "legendgrouptitle_text": "SAEs", "mode": "lines+markers",
                 "marker": {"size": 9, "symbol": [_marker(m, f) for m, f in zip(df["meets_targets"], df["far_off"], strict=True)]}}
        fig.add_trace(go.Scatter(x=df["width"], y=df["l0"], name=model, **style), row=1, col=2)
        fig.add_trace(go.Scatter(x=df["width"], y=df["explained_loss"], name=model, showlegend=False, **style), row=1, col=3)
    fig.add_hrect(y0=paper.SAE_L0[0], y1=paper.SAE_L0[1], fillcolor="green", opacity=0.1, line_width=0, row=1, col=2)
    fig.add_hline(y=paper.SAE_EXPLAINED_LOSS_ABOVE, line_dash="dash", line_color="green", row=1, col=3)
    widths = sorted(saes["width"].unique())
    fig.update_xaxes(type="log", tickvals=widths, ticktext=[f"x{w}" for w in widths], title_text="SAE width (x d_mlp)")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=1, col=1)
    fig.update_layout(template="plotly_white", title="Dictionary width: does the persisting share depend on the SAE's size?")
    return fig


def write_widths(spec: dict[str, Any], files: dict[str, dict[str, dict[str, str]]], out: dict[str, str]) -> pd.DataFrame:
    """The `widths` rule: flow/widths.csv (edge x width, out["csv"]), flow/widths_saes.csv (model x width,
    out["saes"]) and the figure (out["html"], out["png"]); `files` as Plan.widths_inputs."""
    s = WidthSpec.from_dict(spec)
    saes = width_sae_rows(s, files["metrics"], files.get("ceiling"))
    edges = width_edge_rows(s, files["corr"], saes)
    return write_sweep("width", saes, edges, width_figure(edges, saes, s.threshold), out, height=450)
