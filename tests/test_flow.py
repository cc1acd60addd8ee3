"""Persistence classes and the paper's lineage counts on a hand-made example; Figure 2's labels on random lineages."""

import numpy as np
import pandas as pd
import pytest

from featureflow.flow import classify
from featureflow.flow.matches import Matches, save_matches

N = np.nan
SPEC = {"edges": [{"source": "base", "target": "a", "kind": "finetune"}, {"source": "base", "target": "b", "kind": "finetune"},
                  {"source": "a", "target": "m", "kind": "merge"}, {"source": "b", "target": "m", "kind": "merge"}],
        "inputs": {"base": [], "a": ["base"], "b": ["base"], "m": ["a", "b"]}, "roots": ["base"]}


def matches(fwd, bwd, active_a=(1, 1, 1, 1), active_b=(1, 1, 1, 1)):
    """fwd/bwd: per feature a list of (partner, corr), best first (top-2)."""
    def arrays(rows):
        idx = np.array([[p for p, _ in r] for r in rows], dtype=np.int32)
        return idx, np.array([[c for _, c in r] for r in rows], dtype=np.float32)
    return Matches(*arrays(fwd), *arrays(bwd), np.array(active_a, bool), np.array(active_b, bool), 100)


EDGES = {
    # base3 never fires; a3 only weakly matches base0
    "base__a": matches(fwd=[[(0, .9), (1, .1)], [(1, .85), (0, .1)], [(2, .5), (0, .1)], [(-1, N), (-1, N)]],
                       bwd=[[(0, .9), (1, .1)], [(1, .85), (0, .1)], [(2, .5), (1, .1)], [(0, .3), (1, .1)]],
                       active_a=(1, 1, 1, 0)),
    # b3's best correlation is exactly 0.8: not "more than 80%"
    "base__b": matches(fwd=[[(0, .95), (1, .1)], [(1, .2), (0, .1)], [(2, .81), (3, .8)], [(-1, N), (-1, N)]],
                       bwd=[[(0, .95), (1, .1)], [(1, .2), (0, .1)], [(2, .81), (1, .1)], [(2, .8), (1, .1)]],
                       active_a=(1, 1, 1, 0)),
    # m0 <- a0 (carried from base), m1 <- a2 (new in a) and a0 at 0.82, m3 matches nothing
    "a__m": matches(fwd=[[(0, .9), (1, .82)], [(2, .5), (1, .1)], [(1, .88), (0, .1)], [(3, .2), (0, .1)]],
                    bwd=[[(0, .9), (1, .1)], [(2, .88), (0, .82)], [(1, .5), (0, .1)], [(3, .2), (0, .1)]]),
    # m2 <- b3 (b3 did not persist from base)
    "b__m": matches(fwd=[[(1, .1), (0, .05)], [(3, .4), (0, .05)], [(0, .2), (1, .05)], [(2, .95), (0, .05)]],
                    bwd=[[(1, .3), (0, .05)], [(0, .1), (2, .05)], [(3, .95), (0, .05)], [(1, .4), (0, .05)]]),
}


@pytest.fixture
def corr_files(tmp_path):
    files = {}
    for name, m in EDGES.items():
        files[name] = tmp_path / f"{name}.npz"
        source, target = name.split("__")
        save_matches(files[name], m, {"source": source, "target": target, "method": "positional", "sample": "s"})
    return files


def run(corr_files, tmp_path, threshold):
    counts = classify(corr_files=corr_files, spec=SPEC, threshold=threshold, controls={}, out_edges=tmp_path / "edges.csv",
                      out_counts=tmp_path / "counts.csv")
    edges = pd.read_csv(tmp_path / "edges.csv")
    by = {(r.quantity.strip(), r.model, r.edge if isinstance(r.edge, str) else ""): r.ours for r in counts.itertuples()}
    return edges, by, counts


def classes(edges, edge, side):
    rows = edges[(edges["edge"] == edge) & (edges["side"] == side)].sort_values("feature")
    return list(rows["class"])


def test_classes_per_edge_at_080(corr_files, tmp_path):
    edges, by, _ = run(corr_files, tmp_path, 0.8)
    assert len(edges) == 4 * (4 + 4)
    assert classes(edges, "base__a", "source") == ["persisting", "persisting", "disappearing", "inactive"]
    assert classes(edges, "base__a", "target") == ["persisting", "persisting", "emerging", "emerging"]
    assert classes(edges, "base__b", "target") == ["persisting", "emerging", "persisting", "emerging"]
    assert classes(edges, "b__m", "target") == ["emerging", "emerging", "persisting", "emerging"]
    row = edges[(edges["edge"] == "a__m") & (edges["side"] == "target") & (edges["feature"] == 1)].iloc[0]
    assert (row["partner"], row["partners_above"], bool(row["partner_inherited"])) == (2, 2, True)
    assert by[("source features persisting", "base", "base__a")] == 2
    assert by[("target features emerging", "b", "base__b")] == 2


def test_lineage_counts_like_the_paper(corr_files, tmp_path):
    _, by, counts = run(corr_files, tmp_path, 0.8)
    assert by[("features persisting into any fine-tuned child", "base", "")] == 3     # base0, base1 (a), base2 (b)
    assert by[("features traceable to a merge input", "m", "")] == 3                 # m0, m1, m2
    assert by[("of which persisted from the inputs' ancestors", "m", "")] == 2       # m0 via a0, m1 via a0 (2nd partner)
    assert by[("of which emerged in the inputs (fine-tuning)", "m", "")] == 1        # m2 via b3
    paper = counts.set_index(counts["quantity"].str.strip())["paper"]
    assert paper["features persisting into any fine-tuned child"] == 959
    assert paper["features traceable to a merge input"] == 1210


def test_a_higher_threshold_changes_the_classes(corr_files, tmp_path):
    _, by, _ = run(corr_files, tmp_path, 0.85)
    assert by[("features persisting into any fine-tuned child", "base", "")] == 1     # only base0 (> 0.85 strictly)
    assert by[("features traceable to a merge input", "m", "")] == 3
    assert by[("of which persisted from the inputs' ancestors", "m", "")] == 1       # m0 only
    assert by[("of which emerged in the inputs (fine-tuning)", "m", "")] == 2


def test_the_browsers_javascript_classifies_as_python_does_at_the_boundary_and_nan(tmp_path):
    """browser.js's featureClass on exactly the data the browser ships (best partner's correlation,
    NaN as null) gives side_classes' answer, at values next to each threshold and on it."""
    import json
    import math
    import os
    import shutil
    import subprocess

    from featureflow.analysis.browser import ASSETS, _exact
    from featureflow.flow import side_classes

    node = shutil.which("node")
    if node is None:
        assert not os.environ.get("FEATUREFLOW_REQUIRE_NODE"), "FEATUREFLOW_REQUIRE_NODE is set but node is missing"
        pytest.skip("no node (apt-get install nodejs)")
    thresholds = [0.3, 0.5, 0.8, 0.95, 1 / 3]
    corr = [np.float32(t) for t in thresholds]
    corr += [np.nextafter(c, np.float32(d)) for c in corr for d in (-1, 2)]
    corr += [np.float32(x) for x in (np.nan, -1.0, 0.0, 0.999, 1.0)]
    col = np.array(corr, dtype=np.float32)[:, None]
    cases, expected = [], []
    for threshold in thresholds:
        for side in ("source", "target"):
            for active in (True, False):
                act = np.full(len(col), active)
                expected += side_classes(act, col, side, threshold).tolist()
                cases += [[active, _exact(c), side, threshold] for c in col[:, 0]]
    assert any(c[1] is None for c in cases) and "persisting" in expected and "disappearing" in expected
    script = tmp_path / "mirror.js"
    script.write_text(f"const {{featureClass}} = require({json.dumps(str(ASSETS / 'browser.js'))});\n"
                      "const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
                      "process.stdout.write(JSON.stringify(cases.map(c => featureClass(c[0], c[1], c[2], c[3]))));\n")
    run = subprocess.run([node, str(script)], input=json.dumps(cases), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    wrong = [(c, e, g) for c, e, g in zip(cases, expected, got, strict=True) if e != g]
    assert not wrong, wrong[:5]
    # the boundary itself: a correlation equal to the threshold does not persist, the next float32 up does
    at = [e for c, e in zip(cases, expected, strict=True) if c[0] and c[2] == "source" and c[3] == 0.8
          and c[1] is not None and 0.8 - 1e-7 < c[1] < 0.8 + 1e-7]  # float32(0.8), the float32 below it, the one above
    assert at == ["disappearing", "disappearing", "persisting"] and math.isclose(_exact(np.float32(0.8)), 0.8, rel_tol=1e-7)


def test_the_sankeys_ends_count_features_emerging_into_and_disappearing_from_every_edge(corr_files, tmp_path):
    from featureflow.flow.sankey import emerged_and_gone

    edges, _, _ = run(corr_files, tmp_path, 0.8)

    def naive(side, model, cls):
        rows = [r for r in edges.to_dict("records") if r["side"] == side and r["model"] == model]
        if not rows:
            return None
        return sum(all(r["class"] == cls for r in rows if r["feature"] == f) for f in {r["feature"] for r in rows})

    ends = {m: emerged_and_gone(edges, m) for m in ("base", "a", "b", "m")}
    assert ends == {m: (naive("target", m, "emerging"), naive("source", m, "disappearing")) for m in ends}
    # m3 matches nothing in either input; a1 and a3 persist into no child; base persists into a or b
    assert ends == {"base": (None, 0), "a": (2, 2), "b": (2, 3), "m": (1, None)}


EXTENDED = {"edges": SPEC["edges"] + [{"source": s, "target": m, "kind": "merge"} for m in ("m2", "m3") for s in ("a", "b")],
            "inputs": {**SPEC["inputs"], "m2": ["a", "b"], "m3": ["a", "b"]}, "roots": ["base"]}


def random_lineage(tmp_path, spec, d=256, seed=0):
    """edges.csv and counts.csv of `spec` from random best partners (nearly half of them above 0.8)."""
    rng = np.random.default_rng(seed)

    def side():
        idx = np.stack([rng.permutation(d) for _ in range(2)], 1).astype(np.int32)
        return idx, np.sort(rng.beta(4, 2, (d, 2)), 1)[:, ::-1].astype(np.float32)

    files = {}
    for e in spec["edges"]:
        name = f"{e['source']}__{e['target']}"
        files[name] = tmp_path / f"{name}.npz"
        m = Matches(*side(), *side(), rng.random(d) > 0.03, rng.random(d) > 0.03, 100)
        save_matches(files[name], m, {"source": e["source"], "target": e["target"], "method": "positional", "sample": "s"})
    classify(corr_files=files, spec=spec, threshold=0.8, controls={}, out_edges=tmp_path / "edges.csv",
             out_counts=tmp_path / "counts.csv")
    return tmp_path / "edges.csv", tmp_path / "counts.csv"


def test_the_sankeys_labels_sit_on_the_outer_side_of_their_nodes(tmp_path):
    """The root's label left of its node, the last models' right of theirs, the others' above; plotly's own
    labels (drawn over the links) are empty; a model's label counts its emerged and disappeared features."""
    from featureflow.flow.sankey import flow_figure

    fig = flow_figure(*random_lineage(tmp_path, SPEC), SPEC)
    trace = fig.data[0]
    assert set(trace.node.label) == {""} and trace.arrangement == "fixed"
    labels = {a.text.split(" (")[0]: a for a in fig.layout.annotations if " (256)" in a.text}
    assert set(labels) == {"base", "a", "b", "m"}
    x = {m: trace.node.x[k] for k, m in enumerate(["base", "a", "b", "m"])}
    y = {m: 1 - trace.node.y[k] for k, m in enumerate(["base", "a", "b", "m"])}  # paper coordinates: y upwards
    assert (labels["base"].xanchor, labels["base"].x, labels["base"].xshift < 0) == ("right", x["base"], True)
    assert (labels["m"].xanchor, labels["m"].x, labels["m"].xshift > 0) == ("left", x["m"], True)
    for m in ("a", "b"):
        assert labels[m].yanchor == "bottom" and labels[m].x == x[m] and labels[m].y > y[m]
        assert "emerged" in labels[m].text and "disappeared" in labels[m].text
    assert "disappeared" in labels["base"].text and "emerged" not in labels["base"].text
    assert "emerged" in labels["m"].text and "disappeared" not in labels["m"].text


@pytest.mark.parametrize("spec", [SPEC, EXTENDED], ids=["demo", "extended"])
def test_the_sankeys_labels_overlap_no_link_or_node_in_chromium(tmp_path, spec):
    """Rendered by plotly.js in headless Chromium, no visible text of Figure 2 touches a link or a node,
    for the demo's lineage and for the extended one's (three merges of the same two models), and every
    node is as high as `node_heights`, on which the labels' places rest, says."""
    from featureflow.flow.sankey import DRAWING, flow_figure, node_heights, sankey_figure
    from helpers import sankey_probe

    edges_csv, counts_csv = random_lineage(tmp_path, spec)
    sankey_figure(edges_csv, counts_csv, spec, tmp_path / "fig2.html", None)
    found = sankey_probe(tmp_path / "fig2.html")
    models = {e["source"] for e in spec["edges"]} | {e["target"] for e in spec["edges"]}
    assert sum(" (256)" in t["text"] for t in found["texts"]) == len(models)
    assert not [t for t in found["texts"] if t["hits"]], found["texts"]
    trace = flow_figure(edges_csv, counts_csv, spec).data[0]
    links = list(zip(trace.link.source, trace.link.target, trace.link.value, strict=True))
    assert found["links"] == len(links)
    expected = [h * DRAWING for h in node_heights(len(trace.node.color), links, trace.node.pad)]
    assert found["node_heights"] == pytest.approx(expected, abs=1.0)
