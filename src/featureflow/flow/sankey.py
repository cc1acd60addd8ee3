"""The paper's Figure 2: features flowing along the lineage, as a Sankey diagram."""

from __future__ import annotations

from dataclasses import dataclass
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


# The figure's size in pixels, fixed in the HTML too: the node labels are annotations placed from
# the node sizes that plotly works out for this drawing height (`node_heights`).
WIDTH, HEIGHT = 1100, 600
MARGIN = {"l": 130, "r": 130, "t": 60, "b": 70}
DRAWING = HEIGHT - MARGIN["t"] - MARGIN["b"]
PAD, THICKNESS = 12, 14
ROW, DROP = 16 / DRAWING, 16 / DRAWING  # a label's line; how far an end node hangs below its model
LABEL = 3 * ROW + 4 / DRAWING  # a model's label: name, then its emerged and disappeared counts, a line each
GAP = DROP + LABEL  # between models of a column: the upper one's end nodes, then the lower one's label
END_DX = 0.1  # an end node's distance from its model


@dataclass
class Node:
    """One node: its label (hover text for end nodes, whose counts are in their model's label), colour,
    column (x) and where its label goes; `model` and `kind` (model, emerged or gone) place it."""

    label: str
    colour: str
    x: float
    side: str | None
    model: str
    kind: str


def node_heights(n_nodes: int, links: list[tuple[int, int, int]], pad: float, height: float = DRAWING) -> list[float]:
    """Each node's height as a share of the drawing's `height` (px) as plotly's d3-sankey sizes it with
    node padding `pad`: its value (the larger of its in- and outflow) times one scale, the most that every
    column of d3's layout fits (justified: a node's depth along the links, the last column without outflow)."""
    inflow, outflow, depth = [0] * n_nodes, [0] * n_nodes, [0] * n_nodes
    for a, b, v in links:
        outflow[a] += v
        inflow[b] += v
    for _ in range(n_nodes):  # longest path from a source (the lineage is acyclic)
        for a, b, _v in links:
            depth[b] = max(depth[b], depth[a] + 1)
    value = [max(i, o) for i, o in zip(inflow, outflow, strict=True)]
    columns: dict[int, list[int]] = {}
    for k in range(n_nodes):
        if value[k] > 0:  # plotly drops nodes without links
            columns.setdefault(depth[k] if outflow[k] else max(depth), []).append(value[k])
    if not columns:
        return [0.0] * n_nodes
    longest = max(len(c) for c in columns.values())
    pad = min(pad, 2 / 3 * height / (longest - 1)) if longest > 1 else pad  # as d3 caps it
    scale = min((height - (len(c) - 1) * pad) / sum(c) for c in columns.values())
    return [v * scale / height for v in value]


def _model_columns(nodes: list[Node]) -> dict[float, list[int]]:
    """The model nodes of every column (by x), in lineage order."""
    columns: dict[float, list[int]] = {}
    for k, n in enumerate(nodes):
        if n.kind == "model":
            columns.setdefault(n.x, []).append(k)
    return columns


def _column_extent(heights: list[float]) -> float:
    """How much of the drawing's height a column of models takes, with room for a label above it and end nodes below."""
    return LABEL + sum(heights) + GAP * (len(heights) - 1) + DROP


def fitting_heights(nodes: list[Node], links: list[tuple[int, int, int]]) -> tuple[float, list[float]]:
    """(node padding, node heights): the smallest padding from PAD up at which every column of models fits
    the drawing with its labels. plotly scales nodes down as the padding grows; the padding itself does not
    show, as every node's position is given."""
    columns = _model_columns(nodes)
    for pad in range(PAD, DRAWING, 2):  # beyond d3's cap on the padding, the heights stay as they are
        heights = node_heights(len(nodes), links, pad)
        if all(_column_extent([heights[k] for k in c]) <= 1 for c in columns.values()):
            break
    return pad, heights


def node_positions(nodes: list[Node], heights: list[float]) -> list[tuple[float, float]]:
    """Each node's centre (sankey coordinates: y downwards): a column's models stacked in lineage order
    and centred, each model's end nodes beside it, hanging DROP below it."""
    centre: dict[int, float] = {}
    for members in _model_columns(nodes).values():
        h = [heights[k] for k in members]
        top = LABEL + (1 - _column_extent(h)) / 2
        for k in members:
            centre[k] = top + heights[k] / 2
            top += heights[k] + GAP
    model_node = {n.model: k for k, n in enumerate(nodes) if n.kind == "model"}
    for k, n in enumerate(nodes):
        if n.kind != "model":
            m = model_node[n.model]
            centre[k] = centre[m] + heights[m] / 2 + DROP - heights[k] / 2
    return [(n.x, centre[k]) for k, n in enumerate(nodes)]


def label_annotation(text: str, centre: tuple[float, float], height: float, side: str) -> dict[str, Any]:
    """An annotation of `text` on `side` (left, right or above) of the node centred at `centre`
    (sankey coordinates: y downwards) and `height` high (a share of the drawing)."""
    x, y = centre
    out = {"text": text, "x": x, "y": 1 - y, "xref": "paper", "yref": "paper", "showarrow": False}
    beside = THICKNESS / 2 + 4
    if side == "left":
        return out | {"xanchor": "right", "xshift": -beside, "align": "right"}
    if side == "right":
        return out | {"xanchor": "left", "xshift": beside, "align": "left"}
    return out | {"y": 1 - y + height / 2, "yanchor": "bottom", "yshift": 1}


def model_label(name: str, width: int, emerged: int | None, gone: int | None) -> str:
    """A model's label: its name and SAE width, then its emerged and disappeared counts in their nodes' colours
    (a line each: a narrow label stays clear of the links beside the node it is above)."""
    ends = [f'<span style="color:{c}">{n} {what}</span>' for n, what, c in ((emerged, "emerged", EMERGED), (gone, "disappeared", GONE))
            if n is not None]
    return "<br>".join([f"{name} ({width})", *ends])


def model_side(model: str, spec: dict[str, Any]) -> str:
    """Where a model's label goes: on its outer side where links leave or enter on one side only, else above."""
    has_inputs = bool(spec["inputs"].get(model))
    has_children = any(e["source"] == model for e in spec["edges"])
    return "above" if has_inputs and has_children else "right" if has_inputs else "left"


def persisting_links(edges: Any, spec: dict[str, Any], colour: dict[str, str]) -> list[tuple[str, str, int, str, str]]:
    """(source, target, features, colour, hover label) of every edge's links: the target's features persisting
    from the source, carried from the source's own inputs (in the first one's colour) and new in the source."""
    out = []
    target_rows = edges[edges["side"] == "target"]
    for e in spec["edges"]:
        rows = target_rows[(target_rows["source"] == e["source"]) & (target_rows["target"] == e["target"])]
        persisting = rows["class"] == "persisting"
        carried = int((persisting & rows["partner_inherited"]).sum())
        new = int((persisting & ~rows["partner_inherited"]).sum())
        via = spec["inputs"].get(e["source"], [])
        if via:
            out.append((e["source"], e["target"], carried, _rgba(colour[via[0]], 0.55),
                        f"persisting from {e['source']}, carried from {'/'.join(via)}"))
        out.append((e["source"], e["target"], new, _rgba(colour[e["source"]], 0.55),
                    f"persisting from {e['source']}" + (f", new in {e['source']}" if via else "")))
    return out


def sankey_figure(edges_csv: str | Path, counts_csv: str | Path, spec: dict[str, Any], out_html: str | Path,
                  out_png: str | Path | None) -> None:
    """The paper's Figure 2 (`flow_figure`) as HTML and PNG."""
    save_figure(flow_figure(edges_csv, counts_csv, spec), out_html, out_png, width=WIDTH, height=HEIGHT)


def flow_figure(edges_csv: str | Path, counts_csv: str | Path, spec: dict[str, Any]) -> Any:
    """The paper's Figure 2: features flowing along the lineage, at the threshold classify used.

    A link source -> target carries the target's features that persist from the source, split by
    where the source's partner came from (carried from the source's own ancestors, or new in the
    source). Every model also gets an "emerged" inflow (active features traceable to none of its
    inputs) and a "disappeared" outflow (active features persisting into none of its children;
    features that never fire on the sample are left out of both). A feature
    traceable to two inputs is counted in both links. A model's label, beside its node and off the links,
    gives its emerged and disappeared counts.
    """
    import pandas as pd
    import plotly.graph_objects as go

    edges = pd.read_csv(edges_csv)
    counts = pd.read_csv(counts_csv)
    threshold = float(counts["threshold"].iloc[0])
    d_sae = counts.groupby("model")["d_sae"].first()
    models = list(dict.fromkeys([e["source"] for e in spec["edges"]] + [e["target"] for e in spec["edges"]]))
    order = [m for m in dict.fromkeys([*spec["roots"], *spec["inputs"], *models]) if m in models]
    depth = _depths(spec["inputs"], order)
    colour = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(order)}
    last = max(depth.values()) or 1
    ends = {m: emerged_and_gone(edges, m) for m in order}
    nodes = [Node(model_label(m, d_sae[m], *ends[m]), colour[m], 0.06 + 0.86 * depth[m] / last, model_side(m, spec), m, "model")
             for m in order]
    node = {m: k for k, m in enumerate(order)}
    links: list[tuple[int, int, int]] = []
    link_colours, link_labels = [], []

    def link(a: int, b: int, v: int, col: str, label: str) -> None:
        if v > 0:
            links.append((a, b, int(v))), link_colours.append(col), link_labels.append(label)

    def add_end(m: str, kind: str, label: str, col: str) -> int:
        nodes.append(Node(label, col, nodes[node[m]].x + (END_DX if kind == "gone" else -END_DX), None, m, kind))
        return len(nodes) - 1

    for source, target, v, col, label in persisting_links(edges, spec, colour):
        link(node[source], node[target], v, col, label)
    for m in order:
        emerged, gone = ends[m]
        # ends without features get no node: plotly drops unlinked nodes, shifting the positions of later ones
        if emerged:
            link(add_end(m, "emerged", f"emerged in {m}: {emerged}", EMERGED), node[m], emerged, _rgba(EMERGED, 0.3),
                 f"emerged in {m}")
        if gone:
            link(node[m], add_end(m, "gone", f"disappeared after {m}: {gone}", GONE), gone, _rgba(GONE, 0.3),
                 f"disappeared after {m}")
    pad, heights = fitting_heights(nodes, links)
    centres = node_positions(nodes, heights)
    labels = [n.label for n in nodes]
    fig = go.Figure(go.Sankey(
        arrangement="fixed",  # a dragged node would leave its label behind
        node={"label": [""] * len(nodes), "customdata": labels, "hovertemplate": "%{customdata}<extra></extra>",
              "color": [n.colour for n in nodes], "pad": pad, "thickness": THICKNESS,
              "x": [c[0] for c in centres], "y": [c[1] for c in centres]},
        link={"source": [a for a, _, _ in links], "target": [b for _, b, _ in links], "value": [v for _, _, v in links],
              "color": link_colours, "label": link_labels}))
    for n, c, h in zip(nodes, centres, heights, strict=True):
        if n.side is not None:
            fig.add_annotation(label_annotation(n.label, c, h, n.side))
    fig.update_layout(title=f"Feature flow along the lineage (correlation > {threshold:g})", font={"size": 12},
                      width=WIDTH, height=HEIGHT, margin=MARGIN)
    fig.add_annotation(x=0.5, y=-0.06, xref="paper", yref="paper", showarrow=False, font={"size": 11},
                       text="Links: a model's features persisting from an input, coloured by the model they were carried "
                            "from. Green: emerged (no partner in any input). Grey: disappeared (no partner in any child).")
    return fig
