"""The autointerp rules: the cost estimate (always), the runs per model, and the summary (Figure 6).

Categories of features (the paper: 20% of the BabyPython -> Lua -> LuaStories features are
punctuation, 5% formatting) are given two ways, each stated in the output:
- by tokens: a feature is "punctuation" when at least 2 of its 3 tokens with the highest mean
  activation are punctuation only, "formatting" when at least 2 are whitespace only (spaces,
  newlines, indentation), else "other". Needs no endpoint.
- by explanation: keywords in the explanation ("punctuation", "comma", "bracket", ... ->
  punctuation; "whitespace", "indent", "newline", "formatting", ... -> formatting).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from featureflow.analysis import token_texts
from featureflow.config import ConfigError
from featureflow.inputs import LineageFiles
from featureflow.interp.client import ChatClient, Ledger, price_problem
from featureflow.interp.run import Records, chain_features, estimate_model, interpret_model, select_features
from featureflow.settings import InterpCost, InterpFeatures, InterpSettings

PUNCTUATION_WORDS = ("punctuation", "comma", "period", "full stop", "colon", "semicolon", "bracket", "parenthes", "brace",
                     "quotation", "quote", "apostrophe", "hyphen", "dash", "symbol")
FORMATTING_WORDS = ("whitespace", "white space", "indent", "newline", "new line", "line break", "formatting", "spaces", "tab")


def token_category(texts: list[str]) -> str:
    top = texts[:3]
    if sum(bool(t.strip()) and all(c in string.punctuation for c in t.strip()) for t in top) >= 2:
        return "punctuation"
    if sum(t != "" and not t.strip() for t in top) >= 2:
        return "formatting"
    return "other"


def explanation_category(text: str | None) -> str | None:
    if not text:
        return None
    low = text.lower()
    if any(w in low for w in PUNCTUATION_WORDS):
        return "punctuation"
    if any(w in low for w in FORMATTING_WORDS):
        return "formatting"
    return "other"


def load_records(stats_npz: str | Path, acts_npz: str | Path, sample: dict[str, np.ndarray], texts: list[str]) -> Records:
    from featureflow.analysis import load_feature_stats
    from featureflow.flow import load_acts

    csc = load_acts(acts_npz)[0].tocsc()
    csc.sort_indices()
    return Records(csc, load_feature_stats(stats_npz), sample["blocks"], texts)


def _selection(edges_csv: str | Path, spec: dict[str, Any], stats: dict[str, dict[str, np.ndarray]], sel: InterpFeatures,
               seed: int) -> tuple[dict[str, set[int]], dict[str, list[tuple[int, str]]]]:
    """Every model's persisting-chain features, and the features picked for the models in `stats`."""
    chains = chain_features(pd.read_csv(edges_csv), spec)
    picked = {m: select_features(m, chains[m], st["fires"] > 0, sel, seed) for m, st in stats.items()}
    return chains, picked


def write_estimate(files: LineageFiles, spec: dict[str, Any], cost: InterpCost, seed: int, out_json: str | Path) -> dict:
    """What autointerp of the selected features would send and cost (nothing is sent), and the
    token-based categories of every model's persisting-chain features.

    Requests that could not be priced (a remote endpoint, a model without a price) stop the job
    when autointerp is enabled, and are stated in the estimate when it is not."""
    from featureflow.analysis import load_feature_stats
    from featureflow.flow import load_sample

    unpriced = price_problem(cost)
    if unpriced and cost.enabled:
        raise ConfigError(unpriced)
    texts, sample = token_texts(files.tokenizer_dir), load_sample(files.sample)
    stats = {m: load_feature_stats(files.stats[m]) for m in files.models}
    chains, picked = _selection(files.edges, spec, stats, cost.features, seed)
    per_model, categories = {}, {}
    for m in stats:
        per_model[m] = estimate_model(picked[m], load_records(files.stats[m], files.acts[m], sample, texts), cost, seed)
        cats = [token_category([texts[t] for t in stats[m]["top_token_ids"][f] if t >= 0]) for f in sorted(chains[m])]
        categories[m] = {"chain_features": len(cats), **{c: cats.count(c) for c in ("punctuation", "formatting", "other")}}
    total = {k: sum(v[k] for v in per_model.values()) for k in ("features", "requests", "prompt_tokens", "completion_tokens_max")}
    total["usd_max"] = round(sum(v["usd_max"] for v in per_model.values()), 4)
    out = {"model": cost.model, "prices_per_million_tokens": cost.prices.get(cost.model), "enabled": cost.enabled,
           "per_model": per_model, "total": total,
           "note": f"worst case: prompts counted at {cost.chars_per_token} characters per token, every completion at its "
                   "max_tokens; the paper paid USD 0.11 per feature with GPT-4 Turbo",
           "chain_feature_categories_by_tokens": categories}
    if unpriced:  # (autointerp is off: it would have stopped above)
        out["unpriced"] = unpriced
    Path(out_json).write_text(json.dumps(out, indent=2) + "\n")
    return out


def run_interp(files: LineageFiles, spec: dict[str, Any], settings: InterpSettings, seed: int, cache_dir: str | Path,
               out_jsonl: str | Path) -> dict[str, Any]:
    """The `interp` rule for the one model of `files`. `budget_usd` caps the whole run: this model's job may spend
    the share of it that its estimate has of the total estimate (all of it without an estimate)."""
    import dataclasses
    import logging

    from featureflow.analysis import load_feature_stats
    from featureflow.flow import load_sample

    (model,) = files.models
    if files.estimate is not None:
        est = json.loads(Path(files.estimate).read_text())
        total, own = est["total"]["usd_max"], est["per_model"].get(model, {}).get("usd_max", 0.0)
        settings = dataclasses.replace(settings, budget_usd=settings.budget_usd * (own / total if total > 0 else 1.0))
    client = ChatClient(settings, cache_dir, Ledger(budget_usd=settings.budget_usd))  # checks the price and the key first
    _, picked = _selection(files.edges, spec, {model: load_feature_stats(files.stats[model])}, settings.features, seed)
    records = load_records(files.stats[model], files.acts[model], load_sample(files.sample), token_texts(files.tokenizer_dir))
    summary = interpret_model(model, picked[model], records, client, seed, out_jsonl)
    logging.getLogger(__name__).info("%s: %s", model, summary)
    return summary


def write_summary(jsonl: dict[str, str], endpoint_model: str, out_json: str | Path, out_html: str | Path, out_png: str | Path | None) -> dict:
    """Figure 6 (score histograms, persisting vs other) and the scores, costs, failures and categories."""
    import plotly.graph_objects as go

    from featureflow.plotting import save_figure

    rows = [json.loads(line) for p in jsonl.values() for line in Path(p).read_text().splitlines()]
    df = pd.DataFrame(rows)
    out: dict[str, Any] = {"endpoint_model": endpoint_model, "features": len(df), "cost_usd": round(float(df["cost_usd"].sum()), 4) if len(df) else 0,
                           "failures": int(df["failures"].map(len).sum()) if len(df) else 0, "groups": {}}
    fig = go.Figure()
    for group, colour in (("persisting", "#2a7d2a"), ("other", "#888888")):
        scores = df.loc[df["group"] == group, "score"].dropna() if len(df) else pd.Series(dtype=float)
        out["groups"][group] = {"features": int((df["group"] == group).sum()) if len(df) else 0, "scored": int(len(scores)),
                                "mean_score": round(float(scores.mean()), 4) if len(scores) else None,
                                "median_score": round(float(scores.median()), 4) if len(scores) else None}
        fig.add_trace(go.Histogram(x=scores, name=f"{group} ({len(scores)})", marker_color=colour, opacity=0.6,
                                   xbins={"start": -1, "end": 1, "size": 0.1}))
    fig.update_layout(barmode="overlay", title="Figure 6: explanation scores, persisting vs other features",
                      xaxis_title="score (Pearson of simulated and true activations)", yaxis_title="features")
    save_figure(fig, out_html, out_png)
    chain = df[df["group"] == "persisting"] if len(df) else df
    cats = [explanation_category(e) for e in chain.get("explanation", pd.Series(dtype=object))]
    known = [c for c in cats if c]
    out["persisting_categories_by_explanation"] = {c: round(known.count(c) / len(known), 4) if known else None
                                                   for c in ("punctuation", "formatting", "other")}
    out["category_method"] = "keywords in the explanation (featureflow.interp.jobs); by tokens: results/interp/estimate.json"
    Path(out_json).write_text(json.dumps(out, indent=2) + "\n")
    return out
