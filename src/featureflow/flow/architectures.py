"""SAE architectures compared (experiments.architectures): the persisting share along every edge when every
model's SAE is of another architecture (TopK, BatchTopK, JumpReLU, ...), at the lineage's width.

Every model of the experiment has an SAE of each listed architecture, trained with the lineage's shared
recipe (tokens, batch, learning rate; only the architecture and its own keys change; TopK's `k` defaults
to the model's lineage SAE's measured L0, so that sparsity is matched), and each edge is correlated at
each architecture exactly as the lineage's edges are. The rows are featureflow.flow.sweeps' with the
column `architecture`: flow/architectures.csv per edge (persisting share, share of that architecture's
seed ceiling, both SAEs' L0, explained loss and dead share) and flow/architectures_saes.csv per model.
Paulo & Belrose (2025) find TopK SAEs agree less across seeds than ReLU ones, so only share_of_ceiling
compares architectures; a raw share that falls with the ceiling says nothing about the models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from featureflow.flow.sweeps import Sweep, sweep_edge_rows, sweep_sae_rows, write_sweep


@dataclass(frozen=True)
class ArchitectureSpec:
    """The experiment: its architectures (the lineage's own, `own`, among them), the models and edges it
    covers, the threshold, and each architecture's own settings as trained (k "from L0" until measured)."""

    architectures: list[str]
    own: str
    models: list[str]
    edges: list[dict[str, str]]
    threshold: float
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArchitectureSpec:
        return cls(architectures=list(d["architectures"]), own=str(d["own"]), models=list(d["models"]),
                   edges=[dict(e) for e in d["edges"]], threshold=float(d["threshold"]), settings=dict(d.get("settings") or {}))

    def sweep(self) -> Sweep:
        """The sweep's variants are its architectures."""
        return Sweep(key="architecture", variants=self.architectures, own=self.own, models=self.models, edges=self.edges,
                     threshold=self.threshold)


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items()) or "-"


def trained_settings(spec: ArchitectureSpec, arch: str, extra_json: str | None) -> str:
    """The architecture's own keys as the SAE trained with them (its featureflow_sae.json; `k` as measured),
    else as configured."""
    own = spec.settings.get(arch, {})
    if extra_json is not None:
        trained = json.loads(Path(extra_json).read_text()).get("settings") or {}
        own = {k: trained.get(k, v) for k, v in own.items()}
    return _settings_text(own)


def architecture_sae_rows(spec: ArchitectureSpec, metrics_files: dict[str, dict[str, str]],
                          ceiling_files: dict[str, dict[str, str]] | None = None,
                          extra_files: dict[str, dict[str, str]] | None = None) -> pd.DataFrame:
    """One row per model and architecture (featureflow.flow.sweeps.sweep_sae_rows), with the settings its SAE
    trained with (`extra_files`: architecture -> model -> featureflow_sae.json)."""
    return sweep_sae_rows(spec.sweep(), metrics_files, ceiling_files,
                          lambda a, m: {"settings": trained_settings(spec, a, (extra_files or {}).get(a, {}).get(m))})


def architecture_edge_rows(spec: ArchitectureSpec, corr_files: dict[str, dict[str, str]], saes: pd.DataFrame) -> pd.DataFrame:
    """One row per edge and architecture (featureflow.flow.sweeps.sweep_edge_rows)."""
    return sweep_edge_rows(spec.sweep(), corr_files, saes)


def architecture_figure(edges: pd.DataFrame, saes: pd.DataFrame, threshold: float) -> Any:
    """Four panels, one bar per architecture: per edge the persisting share and its share of that architecture's
    seed ceiling; per model its SAE's L0 and explained loss with the paper's targets."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from featureflow import paper
    from featureflow.plotting import COLOURS

    fig = make_subplots(rows=2, cols=2, vertical_spacing=0.22, horizontal_spacing=0.08, subplot_titles=(
        f"source features persisting (corr > {threshold:g})", "share of the architecture's seed ceiling",
        f"SAE L0 (paper: {paper.SAE_TARGETS['l0']})", f"SAE explained loss (paper: {paper.SAE_TARGETS['explained_loss']})"))
    labels = edges["edge"].str.replace("__", " → ")
    for i, arch in enumerate(dict.fromkeys(saes["architecture"])):
        colour = {"marker_color": COLOURS[i % len(COLOURS)], "legendgroup": arch}
        on = edges["architecture"] == arch
        fig.add_trace(go.Bar(x=labels[on], y=edges.loc[on, "persisting_share"], name=arch, **colour,
                             customdata=edges.loc[on, ["persisting", "d_sae"]],
                             hovertemplate="%{x}: %{y:.1%} (%{customdata[0]} of %{customdata[1]})"), row=1, col=1)
        fig.add_trace(go.Bar(x=labels[on], y=edges.loc[on, "share_of_ceiling"], name=arch, showlegend=False, **colour,
                             hovertemplate="%{x}: %{y:.2f} of the ceiling"), row=1, col=2)
        mine = saes[saes["architecture"] == arch]
        fig.add_trace(go.Bar(x=mine["model"], y=mine["l0"], name=arch, showlegend=False, **colour), row=2, col=1)
        fig.add_trace(go.Bar(x=mine["model"], y=mine["explained_loss"], name=arch, showlegend=False, **colour), row=2, col=2)
    fig.add_hrect(y0=paper.SAE_L0[0], y1=paper.SAE_L0[1], fillcolor="green", opacity=0.1, line_width=0, row=2, col=1)
    fig.add_hline(y=paper.SAE_EXPLAINED_LOSS_ABOVE, line_dash="dash", line_color="green", row=2, col=2)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=1, col=1)
    fig.update_layout(template="plotly_white", barmode="group",
                      title="SAE architectures: does the persisting share depend on how the SAE is sparse?")
    return fig


def write_architectures(spec: dict[str, Any], files: dict[str, dict[str, dict[str, str]]], out: dict[str, str]) -> pd.DataFrame:
    """The `architectures` rule: flow/architectures.csv (edge x architecture, out["csv"]), architectures_saes.csv
    (model x architecture, out["saes"]) and the figure (out["html"], out["png"]); `files` as Plan.architectures_inputs."""
    s = ArchitectureSpec.from_dict(spec)
    saes = architecture_sae_rows(s, files["metrics"], files.get("ceiling"), files.get("extra"))
    edges = architecture_edge_rows(s, files["corr"], saes)
    return write_sweep("architecture", saes, edges, architecture_figure(edges, saes, s.threshold), out, height=750)
