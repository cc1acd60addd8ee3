"""The paper's Figure 2: features flowing along the lineage, as a Sankey diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featureflow.plotting import COLOURS, EMERGED, GONE, save_figure


def emerged_and_gone(edges: Any, model: str) -> tuple[int | None, int | None]:
    """The Sankey's two ends of `model`, from classify's edges table: its features emerging on every edge
    into it, and those disappearing on every edge out of it (None where no edge ends, or starts, at it).
    One vectorised groupby: a paper-size table has a row per feature per edge side."""
    def every(side: str, cls: str) -> int | None:
        rows = edges[(edges["side"] == side) & (edges["model"] == model)]
        return int((rows["class"] == cls).groupby(rows["feature"]).all().sum()) if len(rows) else None

    return every("target", "emerging"), every("source", "disappearing")


def _depths(inputs: dict[str, list[str]], models: list[str]) -> dict[str, int]:
    depth: dict[str, int] = {}
    for m in models:  # lineage order: inputs first
        depth[m] = 1 + max((depth[i] for i in inputs.get(m, [])), default=-1)
    return depth


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def sankey_figure(edges_csv: str | Path, counts_csv: str | Path, spec: dict[str, Any], out_html: str | Path,
                  out_png: str | Path | None) -> None:
    """The paper's Figure 2: features flowing along the lineage, at the threshold classify used.

    A link source -> target carries the target's features that persist from the source, split by
    where the source's partner came from (carried from the source's own ancestors, or new in the
    source). Every model also gets an "emerged" inflow (active features traceable to none of its
    inputs) and a "disappeared" outflow (active features persisting into none of its children;
    features that never fire on the sample are left out of both). A feature
    traceable to two inputs is counted in both links.
    """
    import pandas as pd
    import plotly.graph_objects as go

    edges = pd.read_csv(edges_csv)
    counts = pd.read_csv(counts_csv)
    threshold = float(counts["threshold"].iloc[0])
    d_sae = counts.groupby("model")["d_sae"].first()
    models = list(dict.fromkeys([e["source"] for e in spec["edges"]] + [e["target"] for e in spec["edges"]]))
    inputs = spec["inputs"]
    order = [m for m in dict.fromkeys([*spec["roots"], *inputs, *models]) if m in models]
    depth = _depths(inputs, order)
    colour = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(order)}
    labels, xs, ys, node_colours, node = [], [], [], [], {}

    def add_node(key: str, label: str, x: float, y: float, col: str) -> int:
        node[key] = len(labels)
        labels.append(label)
        xs.append(x)
        ys.append(y)
        node_colours.append(col)
        return node[key]

    last = max(depth.values()) or 1
    column = {d: [m for m in order if depth[m] == d] for d in range(last + 1)}
    pos = {}
    for d, members in column.items():
        for rank, m in enumerate(members):
            pos[m] = (0.06 + 0.86 * d / last, 0.08 + 0.62 * (rank + 0.5) / len(members))
    for m in order:
        add_node(m, f"{m} ({d_sae[m]})", *pos[m], colour[m])
    src, dst, val, link_colours, link_labels = [], [], [], [], []

    def link(a: int, b: int, v: int, col: str, label: str) -> None:
        if v > 0:
            src.append(a), dst.append(b), val.append(int(v)), link_colours.append(col), link_labels.append(label)

    target_rows = edges[edges["side"] == "target"]
    for e in spec["edges"]:
        rows = target_rows[(target_rows["source"] == e["source"]) & (target_rows["target"] == e["target"])]
        persisting = rows["class"] == "persisting"
        carried = int((persisting & rows["partner_inherited"]).sum())
        new = int((persisting & ~rows["partner_inherited"]).sum())
        via = inputs.get(e["source"], [])
        if via:
            link(node[e["source"]], node[e["target"]], carried, _rgba(colour[via[0]], 0.55),
                 f"persisting from {e['source']}, carried from {'/'.join(via)}")
        link(node[e["source"]], node[e["target"]], new, _rgba(colour[e["source"]], 0.55),
             f"persisting from {e['source']}" + (f", new in {e['source']}" if via else ""))
    for m in order:
        emerged, gone = emerged_and_gone(edges, m)
        x, y = pos[m]
        if emerged is not None:
            link(add_node(f"{m}:emerged", f"emerged: {emerged}", x - 0.1, min(y + 0.2, 0.97), EMERGED),
                 node[m], emerged, _rgba(EMERGED, 0.3), f"emerged in {m}")
        if gone is not None:
            link(node[m], add_node(f"{m}:gone", f"disappeared: {gone}", x + 0.1, min(y + 0.2, 0.97), GONE),
                 gone, _rgba(GONE, 0.3), f"disappeared after {m}")
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node={"label": labels, "color": node_colours, "pad": 12, "thickness": 14, "x": xs, "y": ys},
        link={"source": src, "target": dst, "value": val, "color": link_colours, "label": link_labels}))
    fig.update_layout(title=f"Feature flow along the lineage (correlation > {threshold:g})", font={"size": 12})
    fig.add_annotation(x=0.5, y=-0.06, xref="paper", yref="paper", showarrow=False, font={"size": 11},
                       text="Links: a model's features persisting from an input, coloured by the model they were carried "
                            "from. Green: emerged (no partner in any input). Grey: disappeared (no partner in any child).")
    save_figure(fig, out_html, out_png, width=1100, height=600)
