"""Yardsticks for "persisting": the seed controls, the shuffle null, and the threshold curve.

- SAE seed ceiling (per model): the share of a model's active SAE features that have a partner above
  the threshold in a second SAE of the same model trained with another seed. Nothing can persist
  more reliably across models than across two dictionaries of one model.
- Model seed floor (per control edge): the share of a root model's features with a partner in a model
  trained identically from another seed: what two models that saw the same data share.
- Shuffle null (per lineage edge, `flow.null`): the share that "persists" by chance.

All of them are read from stored top-k correlations, so the threshold curve (share against
threshold, 0.30 .. 0.95) costs no new correlation pass, and a new threshold reruns nothing above
the classify rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featureflow.flow.matches import Matches, load_matches
from featureflow.flow.null import false_match_rate, load_null, null_thresholds, share_above

CURVE_THRESHOLDS = np.round(np.arange(0.30, 0.9501, 0.01), 2)
CURVE_COLUMNS = ["series", "kind", "edge", "model", "threshold", "share"]


@dataclass(frozen=True)
class ControlFiles:
    """The controls' stored results: SAE-seed correlations by model, model-seed correlations by
    control edge, shuffle nulls by lineage edge (each empty when that control is off)."""

    sae_seed: dict[str, str] = field(default_factory=dict)
    model_seed: dict[str, str] = field(default_factory=dict)
    null: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, dict[str, str]] | None) -> ControlFiles:
        d = d or {}
        return cls(**{k: dict(d.get(k) or {}) for k in ("sae_seed", "model_seed", "null")})

    def __bool__(self) -> bool:
        return bool(self.sae_seed or self.model_seed or self.null)


def persisting_share(m: Matches, threshold: float | np.ndarray, side: str = "source") -> float | np.ndarray:
    """Share of one side's active features whose best partner correlates above `threshold` (the classes' `>`,
    in float32); an array of thresholds gives an array of shares."""
    corr, active = (m.fwd_corr, m.active_a) if side == "source" else (m.bwd_corr, m.active_b)
    return share_above(corr[active, 0], threshold)


def control_rows(controls: ControlFiles, threshold: float) -> list[dict[str, Any]]:
    """counts.csv rows of the controls at `threshold` (quantity, model, edge, ours, d_sae, ours_share)."""
    seeds = [("control: SAE seed ceiling (features found again by an SAE of another seed)", model, "", path)
             for model, path in controls.sae_seed.items()]
    seeds += [("control: model seed floor (features shared with a model of another seed)", edge.split("__")[0], edge, path)
              for edge, path in controls.model_seed.items()]
    rows = []
    for quantity, model, edge, path in seeds:
        m = load_matches(path)[0]
        share = float(persisting_share(m, threshold))
        rows.append({"quantity": quantity, "model": model, "edge": edge, "ours": int(round(share * m.active_a.sum())),
                     "d_sae": m.fwd_idx.shape[0], "ours_share": round(share, 4)})
    for edge, path in controls.null.items():
        null = load_null(path)
        rate = float(false_match_rate(null, threshold))
        thresholds = null_thresholds(null)
        rows.append({"quantity": "null: false-match rate (best partner above the threshold by chance)",
                     "model": edge.split("__")[0], "edge": edge, "ours": int(round(rate * null["fwd"].shape[1])),
                     "d_sae": null["fwd"].shape[1], "ours_share": round(rate, 6),
                     "null_threshold_1pct": thresholds["rate_0.01"], "null_threshold_0.1pct": thresholds["rate_0.001"]})
    return rows


def add_share_of_ceiling(counts: pd.DataFrame) -> pd.DataFrame:
    """Column `share_of_ceiling`: each persisting count's share divided by the SAE seed ceiling of the
    same model (empty where that model has no SAE seed control)."""
    ceiling = counts[counts["quantity"].str.startswith("control: SAE seed ceiling")].set_index("model")["ours_share"]
    persisting = counts["quantity"].str.endswith("features persisting")
    ratio = counts["ours_share"] / counts["model"].map(ceiling)
    counts["share_of_ceiling"] = np.where(persisting & ratio.notna(), ratio.round(4), np.nan)
    return counts


def threshold_curve(corr_files: dict[str, str | Path], controls: ControlFiles) -> pd.DataFrame:
    """Persisting share against threshold for every lineage edge (source and target side), the SAE seed
    ceilings, the model seed floors, and each edge's false-match rate under the null (long format)."""
    frames = []

    def add(series: str, kind: str, edge: str, model: str, share: np.ndarray) -> None:
        frames.append(pd.DataFrame({"series": series, "kind": kind, "edge": edge, "model": model,
                                    "threshold": CURVE_THRESHOLDS, "share": np.round(share, 6)}))

    for edge, path in corr_files.items():
        m = load_matches(path)[0]
        source, target = edge.split("__")
        add(f"{source} -> {target}: source persisting", "edge", edge, source, persisting_share(m, CURVE_THRESHOLDS))
        add(f"{source} -> {target}: target persisting", "edge_target", edge, target,
            persisting_share(m, CURVE_THRESHOLDS, side="target"))
    for model, path in controls.sae_seed.items():
        add(f"{model}: SAE seed ceiling", "sae_seed", "", model, persisting_share(load_matches(path)[0], CURVE_THRESHOLDS))
    for edge, path in controls.model_seed.items():
        add(f"{edge.replace('__', ' ~ ')}: model seed floor", "model_seed", edge, edge.split("__")[0],
            persisting_share(load_matches(path)[0], CURVE_THRESHOLDS))
    for edge, path in controls.null.items():
        add(f"{edge.replace('__', ' -> ')}: null (false-match rate)", "shuffle_null", edge, edge.split("__")[0],
            false_match_rate(load_null(path), CURVE_THRESHOLDS))
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS] if frames else pd.DataFrame(columns=CURVE_COLUMNS)


def write_threshold_curve(corr_files: dict[str, str | Path], controls: dict[str, dict[str, str]] | ControlFiles,
                          out_csv: str | Path, out_html: str | Path, out_png: str | Path | None) -> pd.DataFrame:
    """The `threshold_curve` stage: the curve's table and its figure (threshold-free: drawn once)."""
    import plotly.graph_objects as go

    from featureflow.plotting import COLOURS, save_figure

    controls = controls if isinstance(controls, ControlFiles) else ControlFiles.from_dict(controls)
    curve = threshold_curve(corr_files, controls)
    curve.to_csv(out_csv, index=False)
    dash = {"edge": "solid", "edge_target": "dot", "sae_seed": "dash", "model_seed": "dashdot", "shuffle_null": "longdash"}
    greys = iter(["#000000", "#555555", "#999999"] * len(curve))  # one shade per ceiling / floor
    fig = go.Figure()
    for i, (series, df) in enumerate(curve.groupby("series", sort=False)):
        kind = df["kind"].iat[0]
        colour = ("#bbbbbb" if kind == "shuffle_null" else next(greys) if kind in ("sae_seed", "model_seed")
                  else COLOURS[i % len(COLOURS)])
        fig.add_trace(go.Scatter(x=df["threshold"], y=df["share"], name=series, mode="lines",
                                 line={"dash": dash[kind], "color": colour, "width": 2.5 if kind != "edge_target" else 1.5}))
    fig.update_layout(title="Persisting share against the threshold, with its yardsticks", xaxis_title="correlation threshold",
                      yaxis_title="share of active features", yaxis={"range": [0, 1]}, legend={"font": {"size": 10}})
    fig.add_annotation(x=0, y=-0.17, xref="paper", yref="paper", xanchor="left", yanchor="top", align="left",
                       showarrow=False, font={"size": 11},
                       text="Solid: source features of an edge with a partner above the threshold (dotted: target side).<br>"
                            "Dark dashed: the SAE seed ceiling of a model; dash-dot: the model seed floor; light grey: the null's "
                            "false-match rate.")
    fig.update_layout(margin={"b": 120})
    save_figure(fig, out_html, out_png, width=1100, height=600)
    return curve
