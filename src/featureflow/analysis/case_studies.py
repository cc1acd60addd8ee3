"""The paper's two case studies (section 4.2, Figures 3 and 4), found from the data, never by id.

(a) Persisting feature: among the root model's features that persist along some edge at the
    threshold, the one with the highest LLR for the `persisting` hypothesis (default "="). It is
    followed down every edge of the lineage to its best partner (top-1 correlation) in each model;
    for a merged model reached from two inputs both links are kept. Reported per model: the
    feature, its LLR and density; per edge: the correlation and class. "Mean cross-correlation"
    is the mean of the followed edges' correlations.
(b) Disappearing feature: the root model's feature with the highest LLR for the `disappearing`
    hypothesis (default "except"), its best partner across each edge out of the root, their
    correlation and class, the partner's LLR, and how much more the partner is active on other
    tokens than on the hypothesis (activation mass and firing counts).

Figures 3 and 4 are written as self-contained HTML: token snippets from the common sample, every
token shaded by the feature's activation (relative to that feature's maximum on the sample), one
panel per model. Token text is escaped everywhere it enters the page.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featureflow.analysis.features import block_activations, load_feature_stats, token_texts, top_blocks
from featureflow.inputs import LineageFiles
from featureflow.lineage import edge_name
from featureflow.settings import CaseStudySettings

EXTRA_CONTEXT = 12  # unshaded tokens shown on each side of a sampled block, from the token file


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)


def _edge_row(edges: pd.DataFrame, edge: str, side: str, feature: int) -> pd.Series | None:
    rows = edges[(edges["edge"] == edge) & (edges["side"] == side) & (edges["feature"] == feature)]
    return None if rows.empty else rows.iloc[0]


def _best(table: pd.DataFrame, column: str, candidates: np.ndarray) -> int | None:
    scores = table.set_index("feature").loc[candidates, column].dropna()
    return None if scores.empty else int(scores.idxmax())


def _feature_info(tables: dict[str, pd.DataFrame], model: str, feature: int, hypothesis: str) -> dict[str, Any]:
    row = tables[model].set_index("feature").loc[feature]
    return {"model": model, "feature": int(feature), "llr": _num(row[f"llr_{hypothesis}"]), "density": _num(row["density"]),
            "share_on_hypothesis": _num(row[f"share_{hypothesis}"]), "other_to_hypothesis": _num(row[f"other_to_{hypothesis}"])}


def persisting_study(edges: pd.DataFrame, tables: dict[str, pd.DataFrame], spec: dict[str, Any], hypothesis: str) -> dict[str, Any]:
    """Case study (a): the root's persisting feature with the highest LLR, followed through the lineage."""
    root = spec["roots"][0]
    persisting = edges[(edges["side"] == "source") & (edges["model"] == root) & (edges["class"] == "persisting")]["feature"].unique()
    start = _best(tables[root], f"llr_{hypothesis}", np.sort(persisting)) if len(persisting) else None
    if start is None:
        return {"hypothesis": hypothesis, "found": False, "reason": f"no persisting {root} feature puts activation on the hypothesis"}
    chain, links = {root: start}, []
    for e in spec["edges"]:  # lineage order: a model's inputs come before it
        if e["source"] not in chain:
            continue
        name = edge_name(e["source"], e["target"])
        row = _edge_row(edges, name, "source", chain[e["source"]])
        partner = int(row["partner"]) if row is not None and row["partner"] >= 0 else None
        links.append({"edge": name, "source": e["source"], "target": e["target"], "source_feature": chain[e["source"]],
                      "target_feature": partner, "corr": _num(row["corr"]) if row is not None else None,
                      "class": row["class"] if row is not None else None,
                      "agrees_with_chain": e["target"] not in chain or chain[e["target"]] == partner})
        if partner is not None and e["target"] not in chain:
            chain[e["target"]] = partner
    corrs = [link["corr"] for link in links if link["corr"] is not None]
    return {"hypothesis": hypothesis, "found": True, "models": [_feature_info(tables, m, f, hypothesis) for m, f in chain.items()],
            "links": links, "mean_cross_correlation": _num(np.mean(corrs)) if corrs else None}


def disappearing_study(edges: pd.DataFrame, tables: dict[str, pd.DataFrame], spec: dict[str, Any], hypothesis: str) -> dict[str, Any]:
    """Case study (b): the root's feature with the highest LLR and its best partner across each edge out of the root."""
    root = spec["roots"][0]
    table = tables[root]
    start = _best(table, f"llr_{hypothesis}", table["feature"][table["density"] > 0].to_numpy())
    if start is None:
        return {"hypothesis": hypothesis, "found": False, "reason": f"no {root} feature puts activation on the hypothesis"}
    partners = []
    for e in spec["edges"]:
        if e["source"] != root:
            continue
        name = edge_name(root, e["target"])
        row = _edge_row(edges, name, "source", start)
        if row is None or row["partner"] < 0:
            partners.append({"edge": name, "target": e["target"], "feature": None})
            continue
        info = _feature_info(tables, e["target"], int(row["partner"]), hypothesis)
        t = tables[e["target"]].set_index("feature").loc[int(row["partner"])]
        fires_h, fires = float(t[f"fires_on_{hypothesis}"]), float(t["fires"])
        partners.append({**info, "edge": name, "target": e["target"], "corr": _num(row["corr"]), "class": row["class"],
                         "fires_on_other_to_hypothesis": _num((fires - fires_h) / fires_h) if fires_h > 0 and fires else None})
    return {"hypothesis": hypothesis, "found": True, "feature": _feature_info(tables, root, start, hypothesis), "partners": partners}


def find_case_studies(edges: pd.DataFrame, tables: dict[str, pd.DataFrame], spec: dict[str, Any],
                      persisting: str, disappearing: str) -> dict[str, Any]:
    """Both case studies as plain data (what case_studies.json holds)."""
    return {"persisting": persisting_study(edges, tables, spec, persisting),
            "disappearing": disappearing_study(edges, tables, spec, disappearing)}


# --- Figures 3 and 4: token highlighting -----------------------------------------------------------

PAGE_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
h1{font-size:1.3em}h2{font-size:1.05em;margin:1.4em 0 .3em}.note{color:#555;font-size:.9em}
.snippet{font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:1.7;border:1px solid #ddd;padding:.5em;border-radius:4px}
.ctx{color:#999}.tok{border-radius:2px}table{border-collapse:collapse}td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:left}"""


def token_span(text: str, act: float | None, top: float) -> str:
    """One token as HTML: escaped text, shaded by act / top (None: context outside the sample, unshaded)."""
    shown = html.escape(text)
    if act is None:
        return f'<span class="ctx">{shown}</span>'
    alpha = 0.0 if top <= 0 else min(1.0, max(0.0, act / top))
    return f'<span class="tok" style="background:rgba(214,39,40,{alpha:.2f})" title="{act:.3f}">{shown}</span>'


def snippet_html(texts: list[str], acts: list[float | None], top: float) -> str:
    return '<div class="snippet">' + "".join(token_span(t, a, top) for t, a in zip(texts, acts, strict=True)) + "</div>"


def page(title: str, intro: str, body: str) -> str:
    """A self-contained page: no scripts, no external resources."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{PAGE_STYLE}</style></head><body><h1>{html.escape(title)}</h1><p class=\"note\">{html.escape(intro)}</p>"
            f"{body}</body></html>\n")


class SampleText:
    """Token texts of the common sample's blocks, with unshaded context from the token files around them."""

    def __init__(self, sample: dict[str, np.ndarray], token_files: dict[str, str], texts: list[str]):
        self.sample, self.texts = sample, texts
        self.context = sample["blocks"].shape[1]
        self.arrays = {c: np.load(token_files[c], mmap_mode="r") for c in sample["corpora"].tolist() if c in token_files}

    def block(self, block: int) -> tuple[list[str], list[bool]]:
        """Texts of the block with EXTRA_CONTEXT tokens on each side, and which of them are sampled positions."""
        corpus = str(self.sample["corpora"][self.sample["corpus"][block]])
        start = int(self.sample["start"][block])
        ids = self.sample["blocks"][block].tolist()
        before, after = [], []
        if corpus in self.arrays:
            arr = self.arrays[corpus]
            before = arr[max(0, start - EXTRA_CONTEXT):start].tolist()
            after = arr[start + self.context:start + self.context + EXTRA_CONTEXT].tolist()
        tokens = before + ids + after
        return [self.texts[t] for t in tokens], [False] * len(before) + [True] * len(ids) + [False] * len(after)


def feature_panels(text: SampleText, acts: dict[str, Any], stats: dict[str, dict[str, np.ndarray]],
                   features: list[tuple[str, int]], blocks: list[int]) -> str:
    """Per block, one snippet per (model, feature), shaded by that feature's activations."""
    out = []
    for b in blocks:
        texts, sampled = text.block(b)
        out.append(f"<h2>context {b} ({html.escape(str(text.sample['corpora'][text.sample['corpus'][b]]))})</h2>")
        for model, feature in features:
            values = iter(block_activations(acts[model], feature, b * text.context, (b + 1) * text.context).tolist())
            shaded = [next(values) if s else None for s in sampled]
            top = float(stats[model]["max"][feature])
            out.append(f"<p>{html.escape(model)} #{feature}</p>" + snippet_html(texts, shaded, top))
    return "\n".join(out)


def write_case_studies(files: LineageFiles, spec: dict[str, Any], settings: CaseStudySettings, sample_files: dict[str, str],
                       out_json: str | Path, out_figs: tuple[str | Path, str | Path]) -> dict[str, Any]:
    """The `case_studies` rule: case_studies.json and the two highlight pages (Figures 3 and 4, `out_figs`).

    `sample_files` are the token files the common sample was drawn from (corpus -> file)."""
    from featureflow.flow import counts_threshold, load_acts, load_sample

    persisting, disappearing, n_contexts = settings.persisting, settings.disappearing, settings.contexts
    out_fig3, out_fig4 = out_figs
    edges = pd.read_csv(files.edges)
    stats = {m: load_feature_stats(files.stats[m]) for m in files.models}
    tables = {m: pd.read_csv(files.tables[m]) for m in files.models}
    found = {"threshold": counts_threshold(files.counts),
             **find_case_studies(edges, tables, spec, persisting, disappearing)}
    Path(out_json).write_text(json.dumps(found, indent=2) + "\n")

    text = SampleText(load_sample(files.sample), sample_files, token_texts(files.tokenizer_dir))
    acts = {m: load_acts(files.acts[m])[0].tocsc() for m in files.models}
    for a in acts.values():
        a.sort_indices()
    a, b = found["persisting"], found["disappearing"]
    if a["found"]:
        feats = [(m["model"], m["feature"]) for m in a["models"]]
        root_model, root_feature = feats[0]
        body = _summary_table(a["models"], a["links"]) + feature_panels(
            text, acts, stats, feats, top_blocks(stats[root_model], root_feature, text.context, n_contexts))
    else:
        body = f"<p>{html.escape(a['reason'])}</p>"
    Path(out_fig3).write_text(page(f"Figure 3: the persisting '{persisting}' feature through the lineage",
                                   "Each token is shaded by the feature's activation relative to its maximum on the common sample; "
                                   "grey tokens are context outside the sampled block.", body))
    if b["found"]:
        feats = [(b["feature"]["model"], b["feature"]["feature"])] + [(p["target"], p["feature"]) for p in b["partners"] if p["feature"] is not None]
        body = _summary_table([b["feature"], *[p for p in b["partners"] if p["feature"] is not None]], []) + feature_panels(
            text, acts, stats, feats, top_blocks(stats[feats[0][0]], feats[0][1], text.context, n_contexts))
    else:
        body = f"<p>{html.escape(b['reason'])}</p>"
    Path(out_fig4).write_text(page(f"Figure 4: the '{disappearing}' feature and its best partners", "Shading as in Figure 3.", body))
    return found


def _summary_table(models: list[dict[str, Any]], links: list[dict[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{html.escape(m['model'])}</td><td>#{m['feature']}</td><td>{m['llr']}</td><td>{m['density']}</td>"
                   f"<td>{m.get('corr', '')}</td></tr>" for m in models)
    link_rows = "".join(f"<tr><td>{html.escape(k['edge'])}</td><td>#{k['source_feature']} -> #{k['target_feature']}</td>"
                        f"<td>{k['corr']}</td><td>{html.escape(str(k['class']))}</td></tr>" for k in links)
    out = f"<table><tr><th>model</th><th>feature</th><th>LLR</th><th>density</th><th>corr</th></tr>{rows}</table>"
    if link_rows:
        out += f"<table><tr><th>edge</th><th>features</th><th>correlation</th><th>class</th></tr>{link_rows}</table>"
    return out
