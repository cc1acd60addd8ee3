"""The paper's Figure 5: accuracy of merged models along t."""

from __future__ import annotations

import json
from pathlib import Path

from featureflow.plotting import COLOURS, save_figure


def merge_sweep_figure(sweep_csv: str | Path, sweep_json: str | Path, out_html: str | Path, out_png: str | Path | None) -> None:
    """The paper's Figure 5: accuracy of merged models along t on both inputs' validation data,
    with the shared base model's accuracy as dashed baselines."""
    import pandas as pd
    import plotly.graph_objects as go

    rows = pd.read_csv(sweep_csv).sort_values("t")
    summary = json.loads(Path(sweep_json).read_text())
    first, second = summary["first"], summary["second"]
    fig = go.Figure()
    for colour, name in zip(COLOURS, (first, second), strict=False):
        fig.add_trace(go.Scatter(x=rows["t"], y=rows[f"{name}_accuracy"], mode="lines+markers", name=f"{name} validation",
                                 line={"color": colour}, marker={"size": 5}))
        if "base" in summary:
            fig.add_hline(y=summary["base"][name]["accuracy"], line={"color": colour, "dash": "dash"},
                          annotation_text=f"{summary['base']['model']} on {name}", annotation_position="bottom right")
    t_eq = summary["equilibrium_t"]
    fig.add_vline(x=t_eq, line={"color": "grey", "dash": "dot"},
                  annotation_text=f"{'equilibrium' if summary['crossed'] else 'closest (no crossing)'} t = {t_eq:.2f}")
    fig.update_layout(title=f"{summary['method'].upper()} merge of {first} (t = 0) and {second} (t = 1)",
                      xaxis_title=f"{summary['method']} t", yaxis_title="next-token accuracy",
                      template="plotly_white", legend={"orientation": "h", "y": -0.2})
    save_figure(fig, out_html, out_png)
