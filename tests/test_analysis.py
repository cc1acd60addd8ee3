"""Analysis: LLR proxy by hand, feature statistics vs a naive reference, case studies on planted
features, and token text escaped in the highlight pages (checked in headless Chromium)."""

import math
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from featureflow.analysis.case_studies import find_case_studies, page, snippet_html
from featureflow.analysis.features import StatsSizes, feature_stats, hypothesis_tokens, llr_scores
from helpers import browser_js, chromium_url


def test_llr_on_a_hand_computed_example():
    texts = ["a", "=", "b", " = "]                     # ids 1 and 3 are "=" once whitespace is stripped
    tokens = np.array([0, 1, 2, 0, 3, 2, 0, 2])        # P(H) = 2 / 8
    h = hypothesis_tokens(texts, ["="])
    assert h.tolist() == [1, 3]
    dense = np.zeros((8, 4), dtype=np.float32)
    dense[[1, 4], 0] = [3.0, 1.0]                      # all its activation on "=": share 1
    dense[[1, 2, 5], 1] = [1.0, 1.0, 2.0]              # a quarter on "=", as the sample has
    dense[0, 2] = 5.0                                  # never on "="
    s = llr_scores(sp.csr_matrix(dense), tokens, h)    # feature 3 never fires
    assert s["p_h"] == 0.25
    assert s["llr"][0] == pytest.approx(math.log(1 / 0.25)) and s["llr"][1] == pytest.approx(0.0)
    assert np.isnan(s["llr"][2]) and np.isnan(s["llr"][3])
    assert s["other_to_h"][1] == pytest.approx(3.0) and s["other_to_h"][0] == pytest.approx(0.0)
    assert s["fires_on_h"].tolist() == [2, 1, 0, 0] and s["fires"].tolist() == [2, 3, 1, 0]


def test_the_browser_says_why_an_llr_is_missing():
    """browser.js prints n/a with the reason wherever llr_scores gives NaN, from what the pages hold
    (the feature's density and the hypothesis' share of the sample), and a number elsewhere."""
    from featureflow.analysis.browser import _r

    texts = ["a", "=", "b", " = "]
    tokens = np.array([0, 1, 2, 0, 3, 2, 0, 2])
    dense = np.zeros((8, 4), dtype=np.float32)
    dense[[1, 4], 0] = [3.0, 1.0]
    dense[[1, 2, 5], 1] = [1.0, 1.0, 2.0]
    dense[0, 2] = 5.0                                  # never on "="
    acts = sp.csr_matrix(dense)                        # feature 3 never fires
    density = [_r(x) for x in (dense > 0).mean(axis=0)]
    cases, expected = [], []
    for name, strings in (("=", ["="]), ("missing", ["zzz"])):  # "zzz" is no token of the sample
        s = llr_scores(acts, tokens, hypothesis_tokens(texts, strings))
        for f in range(4):
            cases.append([_r(s["llr"][f]), density[f], _r(s["p_h"]), name])
            expected.append(f"{s['llr'][f]:.2f}" if np.isfinite(s["llr"][f]) else
                            "n/a (the feature never fires on the sample)" if f == 3 else
                            "n/a (no missing tokens in the sample)" if name == "missing" else
                            "n/a (the feature never fires on = tokens)")
    assert expected[2] == "n/a (the feature never fires on = tokens)" and expected[0] == "1.39"
    assert browser_js("data.map(c => B.llrText(c[0], c[1], c[2], c[3]))", cases) == expected


def test_the_browsers_histogram_ticks_powers_of_ten_only():
    """Its log count axis ticks every power of ten and nothing between, from below one position to at least 10."""
    counts = [[0, 3, 5000, 120, 1], [2, 1, 0], [0, 0, 0]]
    layouts = browser_js("data.map(B.histogramLayout)", counts)
    for c, layout in zip(counts, layouts, strict=True):
        y = layout["yaxis"]
        assert (y["type"], y["dtick"]) == ("log", 1) and "tick0" not in y
        assert y["range"][0] < 0 and y["range"][1] >= max(1, math.log10(max(c + [1])))


def test_feature_stats_match_a_naive_reference():
    rng = np.random.default_rng(0)
    n, d, vocab, bins = 600, 40, 30, 8
    dense = np.where(rng.random((n, d)) < 0.1, rng.exponential(1.0, (n, d)), 0).astype(np.float32)
    dense[:, 7] = 0                                    # a dead feature
    dense[:, 11] = 0
    dense[[3, 9, 20], 11] = [2.5, 2.5, 1.0]            # a tie: the earlier position comes first
    tokens = rng.integers(0, vocab, n)
    s = feature_stats(sp.csr_matrix(dense), tokens, vocab, StatsSizes(top_contexts=5, top_tokens=3, min_token_count=4, bins=bins))
    counts = np.bincount(tokens, minlength=vocab)
    for j in range(d):
        col = dense[:, j]
        fired = col > 0
        assert s["density"][j] == pytest.approx(fired.mean())
        assert s["max"][j] == pytest.approx(col.max())
        assert s["mean"][j] == pytest.approx(col[fired].mean() if fired.any() else 0.0)
        order = [r for r in sorted(range(n), key=lambda r: (-col[r], r)) if col[r] > 0][:5]
        assert [r for r in s["top_rows"][j] if r >= 0] == order
        expected_hist = np.bincount(np.minimum((col[fired] / col.max() * bins).astype(int), bins - 1), minlength=bins) if fired.any() \
            else np.zeros(bins)
        assert s["hist"][j].tolist() == expected_hist.tolist()
        means = {t: col[tokens == t].sum() / counts[t] for t in range(vocab) if counts[t] >= 4 and col[tokens == t].sum() > 0}
        best = sorted(means, key=lambda t: (-means[t], t))[:3]
        got = [t for t in s["top_token_ids"][j] if t >= 0]
        assert got == best or np.allclose(sorted(means[t] for t in got), sorted(means[t] for t in best))
    assert s["top_rows"][11][:2].tolist() == [3, 9]
    assert (s["top_rows"][7] == -1).all() and s["density"][7] == 0


def planted_lineage():
    """base -> ft1, base -> ft2, (ft1, ft2) -> merged, with planted classes, partners and LLRs."""
    spec = {"edges": [{"source": "base", "target": "ft1", "kind": "finetune"}, {"source": "base", "target": "ft2", "kind": "finetune"},
                      {"source": "ft1", "target": "merged", "kind": "merge"}, {"source": "ft2", "target": "merged", "kind": "merge"}],
            "inputs": {"base": [], "ft1": ["base"], "ft2": ["base"], "merged": ["ft1", "ft2"]}, "roots": ["base"]}
    d = 6
    rows = []

    def edge(name, source, target, links):
        for f in range(d):
            partner, corr, cls = links.get(f, (0, 0.1, "disappearing"))
            rows.append({"edge": name, "side": "source", "model": source, "feature": f, "partner": partner, "corr": corr, "class": cls})
        for f in range(d):
            rows.append({"edge": name, "side": "target", "model": target, "feature": f, "partner": 0, "corr": 0.1, "class": "emerging"})

    edge("base__ft1", "base", "ft1", {4: (5, 0.9, "persisting"), 1: (0, 0.95, "persisting"), 0: (2, 0.4, "disappearing")})
    edge("base__ft2", "base", "ft2", {4: (1, 0.85, "persisting"), 0: (3, 0.3, "disappearing")})
    edge("ft1__merged", "ft1", "merged", {5: (3, 0.95, "persisting")})
    edge("ft2__merged", "ft2", "merged", {1: (3, 0.88, "persisting")})

    def table(assign, exc):
        t = pd.DataFrame({"feature": range(d), "density": [0.01] * d, "fires": [100] * d})
        for name, llr in (("assignment", assign), ("exception", exc)):
            t[f"llr_{name}"], t[f"share_{name}"], t[f"other_to_{name}"] = llr, 0.5, 1.0
            t[f"fires_on_{name}"] = 10
        return t

    nan = np.nan
    tables = {"base": table([1.0, 2.0, 9.0, nan, 5.0, 0.5], [7.0, 1.0, nan, 2.0, 1.0, 6.9]),  # 2: highest "=" but not persisting
              "ft1": table([0.0] * 5 + [4.0], [0.0, 0.0, 3.0, 0.0, 0.0, 0.0]),
              "ft2": table([0.0, 4.5, 0, 0, 0, 0], [0.0] * d), "merged": table([0.0] * 3 + [4.2, 0, 0], [0.0] * d)}
    return pd.DataFrame(rows), tables, spec


def test_case_studies_find_the_planted_features():
    edges, tables, spec = planted_lineage()
    found = find_case_studies(edges, tables, spec, "assignment", "exception")
    a = found["persisting"]
    assert [(m["model"], m["feature"], m["llr"]) for m in a["models"]] == [("base", 4, 5.0), ("ft1", 5, 4.0), ("ft2", 1, 4.5),
                                                                             ("merged", 3, 4.2)]
    assert [(k["edge"], k["target_feature"], k["corr"]) for k in a["links"]] == [
        ("base__ft1", 5, 0.9), ("base__ft2", 1, 0.85), ("ft1__merged", 3, 0.95), ("ft2__merged", 3, 0.88)]
    assert all(k["agrees_with_chain"] for k in a["links"])
    assert a["mean_cross_correlation"] == pytest.approx(np.mean([0.9, 0.85, 0.95, 0.88]), abs=1e-4)
    b = found["disappearing"]
    assert b["feature"]["feature"] == 0 and b["feature"]["llr"] == 7.0
    assert [(p["target"], p["feature"], p["corr"], p["class"], p["llr"]) for p in b["partners"]] == [
        ("ft1", 2, 0.4, "disappearing", 3.0), ("ft2", 3, 0.3, "disappearing", 0.0)]
    assert b["partners"][0]["fires_on_other_to_hypothesis"] == pytest.approx(9.0)  # (100 - 10) / 10


def test_case_studies_say_when_nothing_persists():
    edges, tables, spec = planted_lineage()
    edges["class"] = edges["class"].replace("persisting", "disappearing")
    found = find_case_studies(edges, tables, spec, "assignment", "exception")
    assert found["persisting"] == {"hypothesis": "assignment", "found": False,
                                   "reason": "no persisting base feature puts activation on the hypothesis"}


HOSTILE = ["<script>console.error('pwned-1')</script>", '"onmouseover="console.error(\'pwned-2\')',
           "</script><script>console.error('pwned-3')</script>", "&amp; <b>bold</b>", "x = 1"]


def chromium(path):
    """(DOM after load, Chromium's log with console messages) of a local page in headless Chromium."""
    return chromium_url(path.as_uri())


def test_highlight_pages_show_hostile_tokens_as_text(tmp_path):
    body = snippet_html(HOSTILE, [1.0, 0.5, None, 0.2, 0.0], top=1.0)
    out = tmp_path / "page.html"
    out.write_text(page("<script>console.error('pwned-0')</script>", "intro", body))
    text = out.read_text()
    assert "<script" not in text and "<b>" not in text
    dom, log = chromium(out)
    assert "pwned" not in log, log                  # no injected script ran
    assert "CONSOLE" not in log, log                # and the page logged nothing at all
    assert "<script" not in dom and "&lt;script&gt;console.error('pwned-1')&lt;/script&gt;" in dom
    control = tmp_path / "control.html"            # the same check sees a script that does run
    control.write_text("<html><body><script>console.error('pwned-control')</script></body></html>")
    assert "pwned-control" in chromium(control)[1]


def test_browser_pages_render_hostile_tokens_as_text_and_link_along_the_lineage(tmp_path):
    from featureflow.analysis.browser import ModelPage, write_assets, write_model_pages, write_threshold
    from featureflow.settings import BrowserSettings

    rng = np.random.default_rng(1)
    vocab = HOSTILE + [f"tok{i}" for i in range(20)]
    ctx, n_blocks, d = 6, 40, 5
    blocks = rng.integers(0, len(vocab), (n_blocks, ctx))
    blocks[:, 2] = 0                                   # the hostile tokens are everywhere
    blocks[:, 3] = 2
    tokens = blocks.reshape(-1)
    dense = np.where(rng.random((n_blocks * ctx, d)) < 0.3, rng.exponential(1.0, (n_blocks * ctx, d)), 0).astype(np.float32)
    dense[:, 4] = 0                                    # a dead feature: no LLR
    acts = sp.csr_matrix(dense)
    stats = feature_stats(acts, tokens, len(vocab), StatsSizes(top_contexts=6, top_tokens=3, min_token_count=1, bins=5))
    llr = llr_scores(acts, tokens, np.array([4]))
    stats["p_assignment"] = llr["p_h"]
    table = pd.DataFrame({"feature": range(d), "llr_assignment": llr["llr"]})
    sample = {"blocks": blocks, "corpus": np.zeros(n_blocks, dtype=int), "start": np.zeros(n_blocks, dtype=int),
              "corpora": np.array(["<b>corpus</b>"])}
    partners = {"idx": np.tile(np.array([[2, 1, -1]]), (d, 1)), "corr": np.tile(np.array([[0.9, 0.5, np.nan]]), (d, 1)),
                "active": np.ones(d, dtype=bool)}
    edges = [{"label": "-> child", "side": "source", "other": "child", **partners}]
    out = tmp_path / "browser"
    write_assets(out, vocab)
    write_threshold(out / "assets/threshold.js", 0.8)
    shown = BrowserSettings(hypotheses=("assignment",), contexts=4, window=2)
    write_model_pages("parent", out, ModelPage(stats=stats, table=table, edges=edges, acts=acts), sample, shown)
    child_edges = [{**edges[0], "label": "<- parent", "side": "target", "other": "parent"}]
    write_model_pages("child", out, ModelPage(stats=stats, table=table, edges=child_edges, acts=acts), sample, shown)
    assert sum(p.stat().st_size for p in out.rglob("*")) < 6_000_000
    for page_path, fragment, expect in ((out / "parent/index.html", "", "Features of parent (5)"),
                                        (out / "parent/feature.html", "#3", "parent feature #3")):
        dom, log = chromium_url(page_path.as_uri() + fragment)
        assert "pwned" not in log and "CONSOLE" not in log, log
        assert expect in dom, dom[:2000]
        assert "<script>console" not in dom and "<b>" not in dom
    dom, _ = chromium_url((out / "parent/feature.html").as_uri() + "#3")
    assert "&lt;script&gt;console.error('pwned-1')&lt;/script&gt;" in dom         # shown as text in the contexts
    assert 'href="../child/feature.html#2"' in dom and "persisting" in dom        # 0.9 > 0.8: the partner link and its class
    assert "LLR assignment: n/a (the feature never fires on assignment tokens)" in dom  # "x = 1" occurs, never under #3
    ticks = re.findall(r'class="ytick"[^>]*>.*?<text[^>]*>([^<]*)</text>', dom)  # the histogram's count axis
    assert ticks and all(t in ("1", "10", "100", "1000") for t in ticks), ticks
    dom, _ = chromium_url((out / "parent/feature.html").as_uri() + "#4")
    assert "LLR assignment: n/a (the feature never fires on the sample)" in dom, dom[:2000]
    assert f"LLR assignment: {llr['llr'][1]:.2f}" in chromium_url((out / "parent/feature.html").as_uri() + "#1")[0]
    dom, _ = chromium_url((out / "parent/index.html").as_uri())
    assert '<td title="the feature never fires on the sample">n/a</td>' in dom
    assert (out / "child/feature.html").exists()



def test_logit_effects_match_the_full_product(tmp_path):
    import torch

    from featureflow.analysis.features import logit_effects
    from featureflow.lm import build_model, save_model
    from featureflow.sae.model import SparseAutoencoder, saelens_cfg, save_sae
    from helpers import architecture

    (tmp_path / "tok").mkdir()
    lm = build_model(architecture(d_model=16, d_mlp=32, n_heads=2, n_layers=1, block_size=8), 50, 0, seed=0)
    with torch.no_grad():
        lm.model.norm.weight.uniform_(0.5, 1.5)  # not all ones: the norm's weights must be applied
    save_model(lm, tmp_path / "tok", tmp_path / "lm")
    sae = SparseAutoencoder(32, 40, seed=1)
    save_sae(sae, tmp_path / "sae", saelens_cfg(sae, "m", "blocks.0.mlp.hook_post", 8, "x"), {})
    got = logit_effects(tmp_path / "lm", tmp_path / "sae", "blocks.0.mlp.hook_post", k=5, batch=16)
    w_dec = sae.W_dec.detach().double().numpy()
    down = lm.model.layers[0].mlp.down_proj.weight.detach().double().numpy()
    full = (w_dec @ down.T * lm.model.norm.weight.detach().double().numpy()) @ lm.lm_head.weight.detach().double().numpy().T
    assert got["logit_up_ids"].shape == (40, 5)
    np.testing.assert_array_equal(got["logit_up_ids"], np.argsort(-full, axis=1)[:, :5])
    np.testing.assert_array_equal(got["logit_down_ids"], np.argsort(full, axis=1)[:, :5])
    np.testing.assert_allclose(got["logit_down"], np.sort(full, axis=1)[:, :5], rtol=1e-4, atol=1e-5)
