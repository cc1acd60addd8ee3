"""The reproduction table: every number the paper reports beside this run's, with a mark.

Each row says what the paper reports, what this run measured, and a mark:

- ``meets``: this run's number satisfies the row's criterion (stated in the row);
- ``differs``: it does not;
- ``not run``: this run did not make the number (autointerp without an endpoint, a fixed merge t);
- ``no paper number``: the paper shows it only as a figure, or has no counterpart model.

The table first states the scale of the run (tokens, model and SAE sizes) beside the paper's, so
that a demo number is never read as a paper-scale one. It works for any lineage: the paper's four
models are matched by their role (the root, the two inputs of the first merge, the merge).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featureflow import paper

MEETS, DIFFERS, NOT_RUN, NO_PAPER = "meets", "differs", "not run", "no paper number"
MARKS = (MEETS, DIFFERS, NOT_RUN, NO_PAPER)
TALLY_WORDS = {MEETS: "meet the paper", DIFFERS: "differ", NOT_RUN: "not run", NO_PAPER: "without a paper number"}


@dataclass(frozen=True)
class Row:
    section: str
    quantity: str
    paper: str
    ours: str
    mark: str
    criterion: str = ""


@dataclass(frozen=True)
class ScaleRow:
    quantity: str
    paper: str
    ours: str
    at_paper_scale: bool


def _json(path: str | Path | None) -> dict[str, Any] | None:
    return json.loads(Path(path).read_text()) if path else None


def load_run(files: dict[str, Any], spec: dict[str, Any], sample_tokens: int) -> dict[str, Any]:
    """Everything the table reads, from the run's result files (`Plan.report_files`), and the size of
    the common sample in token positions."""
    with open(files["counts"], newline="") as fh:
        counts = list(csv.DictReader(fh))
    return {
        "spec": spec,
        "sae_metrics": {m: _json(p) for m, p in files["sae_metrics"].items()},
        "sae_extra": {m: _json(p) for m, p in files["sae_extra"].items()},
        "train_meta": {m: _json(p) for m, p in files["train_meta"].items()},
        "pretrained_meta": {m: _json(p) for m, p in files.get("pretrained_meta", {}).items()},
        "merge_choice": {m: _json(p) for m, p in files["merge_choice"].items()},
        "tokenizer": _json(files["tokenizer_meta"]),
        "counts": counts,
        "case_studies": _json(files["case_studies"]),
        "estimate": _json(files["interp_estimate"]),
        "interp_summary": _json(files.get("interp_summary")),
        "sample_tokens": int(sample_tokens),
    }


def paper_roles(spec: dict[str, Any]) -> dict[str, str]:
    """This lineage's counterpart of each of the paper's models: {our model: paper model}.

    The first root is BabyPython. LuaStories is the first merged model whose two inputs are both
    fine-tunes of that root (else the first merged model), its first input Lua and its second
    TinyStories. Models with no counterpart are left out."""
    roles = {spec["roots"][0]: "babypython"} if spec["roots"] else {}
    merged = [m for m, ins in spec["inputs"].items() if len(ins) == 2]
    paper_shaped = [m for m in merged if roles and all(spec["inputs"][i] == [spec["roots"][0]] for i in spec["inputs"][m])]
    merged = paper_shaped + merged
    if merged:
        first, second = spec["inputs"][merged[0]]
        roles |= {first: "lua", second: "tinystories", merged[0]: "luastories"}
    return roles


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _pct(x: float | None, digits: int = 1, sign: bool = False) -> str:
    return "–" if x is None else f"{100 * x:{'+' if sign else ''}.{digits}f}%"


def _mark(ok: bool) -> str:
    return MEETS if ok else DIFFERS


def _tokens(n: float | None) -> str:
    if n is None:
        return "–"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.4g}{unit}"
    return f"{n:g}"


def scale_rows(run: dict[str, Any]) -> list[ScaleRow]:
    """The size of this run beside the paper's: the table's first block."""
    s, spec = paper.SCALE, run["spec"]
    root = spec["roots"][0] if spec["roots"] else None
    meta = run["train_meta"].get(root) or next(iter(run["train_meta"].values()), None) or {}
    pretrained = run.get("pretrained_meta", {})
    arch = meta.get("arch") or (pretrained.get(root) or next(iter(pretrained.values()), None) or {}).get("arch", {})
    metrics = next(iter(run["sae_metrics"].values()), None) or {}
    extra = next(iter(run["sae_extra"].values()), None) or {}
    vocab, d_sae = run["tokenizer"].get("vocab_size"), metrics.get("d_sae")
    sae_tokens = extra.get("settings", {}).get("tokens")
    base_tokens = meta.get("tokens_seen")
    threshold = float(run["counts"][0]["threshold"]) if run["counts"] else None

    def row(quantity: str, theirs: Any, ours: Any, at_scale: bool, fmt=str) -> ScaleRow:
        return ScaleRow(quantity, fmt(theirs), "–" if ours is None else fmt(ours), at_scale)

    return [
        row("tokenizer vocabulary", s["tokenizer_vocab"], vocab, vocab == s["tokenizer_vocab"]),
        row("LM width d_model / d_mlp / layers", f"{s['d_model']} / {s['d_mlp']} / {s['n_layers']}",
            f"{arch.get('d_model')} / {arch.get('d_mlp')} / {arch.get('n_layers')}" if arch else None,
            (arch.get("d_model"), arch.get("d_mlp"), arch.get("n_layers")) == (s["d_model"], s["d_mlp"], s["n_layers"])),
        row("base model training tokens", s["base_tokens"], base_tokens, (base_tokens or 0) >= 0.9 * s["base_tokens"], _tokens),
        row("SAE features (d_sae)", s["d_sae"], d_sae, d_sae == s["d_sae"]),
        row("SAE training tokens", s["sae_tokens"], sae_tokens, (sae_tokens or 0) >= s["sae_tokens"], _tokens),
        row("common sample for the correlation (token positions)", s["sample_tokens"], run["sample_tokens"],
            run["sample_tokens"] >= s["sample_tokens"], _tokens),
        row("persistence threshold", s["threshold"], threshold, threshold == s["threshold"]),
    ]


def _sae_rows(run: dict[str, Any]) -> list[Row]:
    sec, rows, target = "Sparse autoencoders (Appendix B)", [], paper.SAE_TARGETS
    lo, hi = paper.SAE_L0
    for m, x in run["sae_metrics"].items():
        rows += [
            Row(sec, f"{m}: mean L0", target["l0"], _fmt(x["l0"], 1), _mark(lo <= x["l0"] <= hi), f"in {target['l0']}"),
            Row(sec, f"{m}: MSE", target["mse"], _fmt(x["mse"], 4), _mark(x["mse"] < paper.SAE_MSE_BELOW), target["mse"]),
            Row(sec, f"{m}: explained loss", target["explained_loss"], _fmt(x["explained_loss"]),
                _mark(x["explained_loss"] > paper.SAE_EXPLAINED_LOSS_ABOVE), target["explained_loss"]),
            Row(sec, f"{m}: dead features", "no significant problems", _pct(x["dead_fraction"]),
                _mark(x["dead_fraction"] <= 0.01), "at most 1% dead"),
        ]
    return rows


def _merge_rows(run: dict[str, Any]) -> list[Row]:
    rows = []
    for m, c in run["merge_choice"].items():
        sec = f"Merging {m} (section 3.3, Figure 5)"
        t_alt = round(1 - paper.MERGE_T, 2)
        if c.get("t_from") == "sweep equilibrium":
            ok = min(abs(c["t"] - paper.MERGE_T), abs(c["t"] - t_alt)) <= 0.05
            rows.append(Row(sec, "equilibrium t of the accuracy curves", f"{paper.MERGE_T}", _fmt(c["t"], 2), _mark(ok),
                            f"within ±0.05 of {paper.MERGE_T} or {t_alt} (the paper and its code disagree on which end is t = 0)"))
        else:
            rows.append(Row(sec, "equilibrium t of the accuracy curves", f"{paper.MERGE_T}", f"t fixed at {_fmt(c['t'], 2)}",
                            NOT_RUN, "the config sets t; `t: auto` finds the equilibrium"))
        acc = c["merged_accuracy"]
        a, b = list(acc)[:2]
        rows.append(Row(sec, f"accuracy on the {a} vs the {b} domain", "equal", f"{_fmt(acc[a])} vs {_fmt(acc[b])}",
                        _mark(abs(acc[a] - acc[b]) <= 0.01), "differ by at most 0.01"))
        for src, rel in c["merged_vs_input"].items():
            rows.append(Row(sec, f"accuracy vs {src} on its own domain", _pct(-paper.MERGE_BELOW_INPUTS, 0, True),
                            _pct(rel, 0, True), _mark(abs(rel + paper.MERGE_BELOW_INPUTS) <= 0.10), "within ±10 points"))
        for dom, rel in (c.get("merged_vs_base") or {}).items():
            rows.append(Row(sec, f"accuracy vs the base ({c['base']}) on {dom}'s domain", _pct(paper.MERGE_ABOVE_BASE, 0, True),
                            _pct(rel, 0, True), _mark(abs(rel - paper.MERGE_ABOVE_BASE) <= 0.10), "within ±10 points"))
    return rows


def _count_rows(run: dict[str, Any]) -> list[Row]:
    rows = []
    for r in run["counts"]:
        if not r["paper"]:
            continue
        sec = f"Feature flow at threshold {float(r['threshold']):g} (section 4.1, Figure 2)"
        ours, share, theirs = int(r["ours"]), float(r["ours_share"]), float(r["paper_share"])
        rows.append(Row(sec, f"{r['quantity'].strip()} ({r['model']})", f"{int(float(r['paper'])):,} ({_pct(theirs)})",
                        f"{ours:,} ({_pct(share)} of {int(r['d_sae']):,})", _mark(abs(share - theirs) <= 0.25 * theirs),
                        "share of the SAE's features within ±25% of the paper's share"))
    return rows


def _control_rows(run: dict[str, Any]) -> list[Row]:
    """The yardsticks beside the counts (the paper has none): SAE seed ceilings, model seed floors,
    the null's false-match rate per edge, and each persisting share relative to its model's ceiling."""
    rows, sec = [], "Yardsticks for persisting (not in the paper; docs: controls and experiments)"
    for r in run["counts"]:
        quantity, share = r["quantity"].strip(), float(r["ours_share"])
        where = f"{r['model']}" + (f", {r['edge']}" if r.get("edge") else "")
        if quantity.startswith(("control:", "null:")):
            extra = (f"; thresholds at 1% / 0.1%: {float(r['null_threshold_1pct']):.3f} / {float(r['null_threshold_0.1pct']):.3f}"
                     if quantity.startswith("null:") else "")
            rows.append(Row(sec, f"{quantity} ({where})", "–", f"{_pct(share)}{extra}", NO_PAPER))
        elif r.get("share_of_ceiling") not in (None, "", "nan"):
            rows.append(Row(sec, f"{quantity} relative to {r['model']}'s SAE seed ceiling ({where})", "–",
                            _pct(float(r["share_of_ceiling"])), NO_PAPER))
    return rows


def _category_rows(run: dict[str, Any], roles: dict[str, str]) -> list[Row]:
    sec, rows = "Persisting features by category (section 4.1)", []
    summary = run["interp_summary"]
    by_expl = (summary or {}).get("persisting_categories_by_explanation") or {}
    root = next((m for m, r in roles.items() if r == "babypython"), None)
    tokens = (run["estimate"].get("chain_feature_categories_by_tokens") or {}).get(root) if root else None
    for cat, theirs in paper.CATEGORY_SHARES.items():
        share = by_expl.get(cat)
        if share is None:
            rows.append(Row(sec, f"{cat}, by autointerp explanation (the paper's grouping)", _pct(theirs, 0), "–", NOT_RUN,
                            "needs autointerp (`interp.enabled`)"))
        else:
            rows.append(Row(sec, f"{cat}, by autointerp explanation (the paper's grouping)", _pct(theirs, 0), _pct(share),
                            _mark(abs(share - theirs) <= 0.05), "within ±5 points"))
        if tokens and tokens["chain_features"]:
            share = tokens[cat] / tokens["chain_features"]
            rows.append(Row(sec, f"{cat}, by top tokens ({root}'s {tokens['chain_features']} persisting-chain features)",
                            _pct(theirs, 0), _pct(share), _mark(abs(share - theirs) <= 0.05),
                            "within ±5 points (a proxy: the paper grouped explanations)"))
    return rows


def _case_rows(run: dict[str, Any], roles: dict[str, str]) -> list[Row]:
    cs = run["case_studies"]
    rows, threshold = [], cs["threshold"]
    sec = "Case study (a): the persisting assignment feature (section 4.2.1, Figure 3)"
    per = cs["persisting"]
    if not per.get("found"):
        rows.append(Row(sec, f"a persisting '{per.get('hypothesis')}' feature", "BabyPython #16336", "none found", DIFFERS,
                        "a root feature that persists along the lineage"))
    else:
        for x in per["models"]:
            theirs = paper.ASSIGNMENT_LLR.get(roles.get(x["model"], ""))
            quantity = f"LLR for the {per['hypothesis']} hypothesis, {x['model']} #{x['feature']}"
            if theirs is None:
                rows.append(Row(sec, quantity, "–", _fmt(x["llr"], 2), NO_PAPER))
            else:
                rows.append(Row(sec, quantity, f"{theirs}", _fmt(x["llr"], 2), _mark(abs(x["llr"] - theirs) <= 1.0), "within ±1 nat"))
        corr = per["mean_cross_correlation"]
        rows.append(Row(sec, "mean correlation along the edges", f"{paper.ASSIGNMENT_MEAN_CORR}", _fmt(corr),
                        _mark(abs(corr - paper.ASSIGNMENT_MEAN_CORR) <= 0.1), "within ±0.1"))
        persists = all(link["class"] == "persisting" for link in per["links"])
        rows.append(Row(sec, f"persists along every edge (threshold {threshold:g})", "yes", "yes" if persists else "no",
                        _mark(persists), "same outcome"))
    sec = "Case study (b): the disappearing exception feature (section 4.2.2, Figure 4)"
    dis = cs["disappearing"]
    if not dis.get("found"):
        rows.append(Row(sec, f"a '{dis.get('hypothesis')}' feature of the root", "BabyPython #5506", "none found", DIFFERS,
                        "a root feature for the hypothesis"))
        return rows
    f = dis["feature"]
    rows.append(Row(sec, f"LLR for the {dis['hypothesis']} hypothesis, {f['model']} #{f['feature']}", f"{paper.EXCEPTION_LLR}", _fmt(f["llr"], 2),
                    _mark(abs(f["llr"] - paper.EXCEPTION_LLR) <= 1.0), "within ±1 nat"))
    lua = next((p for p in dis["partners"] if roles.get(p["model"]) == "lua"), dis["partners"][0] if dis["partners"] else None)
    if lua is None:
        return rows
    rows += [
        Row(sec, f"LLR of its best partner, {lua['model']} #{lua['feature']}", f"{paper.EXCEPTION_PARTNER_LLR}", _fmt(lua["llr"], 2),
            _mark(abs(lua["llr"] - paper.EXCEPTION_PARTNER_LLR) <= 1.0), "within ±1 nat"),
        Row(sec, "the partner's activation on other tokens vs on the hypothesis", f"{paper.EXCEPTION_PARTNER_OTHER_RATIO:g}x",
            f"{lua['other_to_hypothesis']:.1f}x", _mark(abs(lua["other_to_hypothesis"] / paper.EXCEPTION_PARTNER_OTHER_RATIO - 1) <= 0.5),
            "within ±50%"),
        Row(sec, "correlation with the partner", f"{paper.EXCEPTION_CORR}", _fmt(lua["corr"]),
            _mark(abs(lua["corr"] - paper.EXCEPTION_CORR) <= 0.1), "within ±0.1"),
        Row(sec, f"disappears (threshold {threshold:g})", "yes", "yes" if lua["class"] == "disappearing" else "no",
            _mark(lua["class"] == "disappearing"), "same outcome"),
    ]
    return rows


def _interp_rows(run: dict[str, Any]) -> list[Row]:
    sec = "Autointerp (Appendix C, Figure 6)"
    summary, est = run["interp_summary"], run["estimate"]
    if summary is None:
        per = est["total"]["usd_max"] / est["total"]["features"] if est["total"]["features"] else None
        note = f"needs `interp.enabled`; the estimate for {est['model']} is at most ${per:.3f} per feature" if per else "needs `interp.enabled`"
        rows = [Row(sec, "cost per explained and scored feature (USD)", f"{paper.INTERP_USD_PER_FEATURE}", "–", NOT_RUN, note)]
        rows += [Row(sec, f"explanation score of {g} features, mean / median", "histogram only", "–", NOT_RUN, "needs `interp.enabled`")
                 for g in ("persisting", "other")]
        return rows
    n = summary["features"]
    per = summary["cost_usd"] / n if n else None
    rows = [Row(sec, f"cost per explained and scored feature (USD, {summary['endpoint_model']})", f"{paper.INTERP_USD_PER_FEATURE}",
                _fmt(per, 3), _mark(per is not None and per <= 2 * paper.INTERP_USD_PER_FEATURE), "at most twice the paper's")]
    for g, x in summary["groups"].items():
        ours = f"{_fmt(x['mean_score'])} / {_fmt(x['median_score'])} ({x['scored']} scored)"
        rows.append(Row(sec, f"explanation score of {g} features, mean / median", "histogram only", ours, NO_PAPER,
                        "Figure 6 has no numbers; see interp/fig6_scores.html"))
    return rows


def _pretrained_rows(run: dict[str, Any]) -> list[Row]:
    """Where each pretrained model of the lineage came from (the paper trained its own)."""
    sec = "Pretrained models (used as they are; not trained by this run)"
    rows = []
    for m, meta in run.get("pretrained_meta", {}).items():
        at = f" @ {meta['commit'][:10]}" if meta.get("commit") else ""
        rows.append(Row(sec, f"{m}: checkpoint", "–", f"{meta['source']}{at} ({meta['model_type']}, {meta['parameters']:,} parameters)",
                        NO_PAPER))
    return rows


def reproduction_rows(run: dict[str, Any]) -> list[Row]:
    """Every paper number beside this run's, in the paper's order."""
    roles = paper_roles(run["spec"])
    return (_pretrained_rows(run) + _sae_rows(run) + _merge_rows(run) + _count_rows(run) + _control_rows(run) + _category_rows(run, roles)
            + _case_rows(run, roles)
            + _interp_rows(run))


def tally(rows: list[Row]) -> dict[str, int]:
    """How many rows carry each mark."""
    return {m: sum(r.mark == m for r in rows) for m in MARKS}
