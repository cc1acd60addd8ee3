"""An offline feature browser: one sortable, filterable index per model and a page per feature
(contexts, histogram, top tokens, partners along the lineage), readable from the file system.

Layout (``results/browser/``)::

    assets/   browser.js, browser.css, plotly.min.js (once for all pages), vocab.js (token texts),
              threshold.js (the configured threshold; written by its own tiny rule)
    {model}/  index.html, feature.html (feature.html#123 shows feature 123),
              data/index.js and data/chunk_NNNNN.js (features in chunks of CHUNK)

The data files are JavaScript assignments loaded by <script src>, which browsers allow from
file:// (fetch() is not). They are threshold-free: the class on each edge is worked out in the
page from the best partner's correlation (stored exactly) by `featureClass` in browser.js, the
tested mirror of `featureflow.flow.side_classes`, so a new threshold rewrites threshold.js only. Token text reaches the page
through textContent alone, and the JSON is ASCII with every "<" escaped.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featureflow.inputs import LineageFiles
from featureflow.settings import BrowserSettings

CHUNK = 256
ASSETS = Path(__file__).with_name("assets")

SHELL = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="../assets/browser.css">
<script src="../assets/vocab.js"></script><script src="../assets/threshold.js"></script>{extra}
<script src="data/index.js"></script><script src="../assets/browser.js"></script>
</head><body><div id="app" data-page="{page}"></div></body></html>
"""


def _js(name: str, key: str | None, value: Any) -> str:
    """`window.NAME = value;` (or `window.NAME[key] = value;`) with ASCII JSON and no raw '<'."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    target = f"window.{name}" if key is None else f"window.{name}=window.{name}||{{}};window.{name}[{json.dumps(key)}]"
    return f"{target}={text};\n"


def _r(x: float, digits: int = 4) -> float | None:
    """x to `digits` significant digits (the double nearest its %g text), NaN and infinities as None.
    Called millions of times for a paper-size SAE, hence the plain format() call."""
    x = float(x)
    return float(format(x, _SIG[digits])) if math.isfinite(x) else None


_SIG = {d: f".{d}g" for d in range(1, 10)}


def _exact(x: float) -> float | None:
    """A stored (float32) correlation as JSON keeps it exactly (shortest repr of its double), NaN as null."""
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def write_assets(out_dir: str | Path, token_texts: list[str]) -> None:
    """The shared files: script, style, plotly (once), and the vocabulary."""
    from plotly.offline import get_plotlyjs

    assets = Path(out_dir) / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    for name in ("browser.js", "browser.css"):
        (assets / name).write_text((ASSETS / name).read_text())
    (assets / "plotly.min.js").write_text(get_plotlyjs())
    (assets / "vocab.js").write_text(_js("FF_VOCAB", None, token_texts))


def write_threshold(path: str | Path, threshold: float | str, counts_csv: str | Path | None = None) -> None:
    """The browser's threshold file; a `null-<rate>` threshold is read back from classify's counts.csv."""
    if isinstance(threshold, str):
        from featureflow.flow import counts_threshold

        if counts_csv is None:
            raise ValueError(f"threshold {threshold!r} is resolved by classify: pass its counts.csv")
        threshold = counts_threshold(counts_csv)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(f"window.FF_THRESHOLD={float(threshold)!r};\n")


@dataclass(frozen=True)
class EdgeMatches:
    """Every edge's stored matches as the browser shows them: the correlations (`corr`, edge -> arrays),
    the other criteria (criterion -> edge -> arrays) and each edge's shuffle-null thresholds."""

    corr: dict[str, dict[str, np.ndarray]]
    others: dict[str, dict[str, dict[str, np.ndarray]]]
    nulls: dict[str, dict[str, float]]


def _load_matches(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in ("fwd_idx", "fwd_corr", "bwd_idx", "bwd_corr", "active_a", "active_b")}


def load_edge_matches(files: LineageFiles) -> EdgeMatches:
    """The browser's per-edge inputs from `files` (other criteria and nulls only where they ran)."""
    from featureflow.flow import load_null, null_thresholds

    others = {c: {e: _load_matches(p) for e, p in per_edge.items()} for c, per_edge in files.criteria.items()}
    return EdgeMatches(corr={e: _load_matches(p) for e, p in files.corr.items()}, others={c: m for c, m in others.items() if m},
                       nulls={e: null_thresholds(load_null(p)) for e, p in files.null.items()})


def model_edges(model: str, spec_edges: list[dict[str, str]], matches: EdgeMatches) -> list[dict[str, Any]]:
    """The model's edges, each with its side, the other model, the partner arrays of that side (of the
    correlations and of every other criterion) and the edge's null thresholds."""
    from featureflow.lineage import edge_name

    out = []
    for e in spec_edges:
        name = edge_name(e["source"], e["target"])
        if model not in (e["source"], e["target"]):
            continue
        src = e["source"] == model
        idx, corr, active = ("fwd_idx", "fwd_corr", "active_a") if src else ("bwd_idx", "bwd_corr", "active_b")
        m = matches.corr[name]
        out.append({"label": f"-> {e['target']}" if src else f"<- {e['source']}", "side": "source" if src else "target",
                    "other": e["target"] if src else e["source"], "idx": m[idx], "corr": m[corr], "active": m[active],
                    "others": {c: (per_edge[name][idx], per_edge[name][corr]) for c, per_edge in matches.others.items()
                               if name in per_edge},
                    "null": matches.nulls.get(name)})
    return out


def _partners(edges: list[dict[str, Any]], f: int, full: bool) -> list[Any]:
    out = []
    for e in edges:
        idx, corr = e["idx"][f], e["corr"][f]
        entry = [int(idx[0]), _exact(corr[0]), int(bool(e["active"][f]))]  # exact: the page classifies on it
        if full:
            entry.append([[int(i), _r(c)] for i, c in zip(idx[1:], corr[1:], strict=True) if i >= 0])
            entry.append({c: [int(i[f, 0]), _r(s[f, 0])] for c, (i, s) in e.get("others", {}).items()})
        out.append(entry)
    return out


def _rounded(values: np.ndarray, digits: int) -> list[float | None]:
    """`_r` of every value; zeros, most of a sparse feature's activations, are kept without formatting."""
    return [x if x == 0.0 else _r(x, digits) for x in np.asarray(values, dtype=np.float64).tolist()]


def _contexts(f: int, stats: dict[str, np.ndarray], csc: Any, sample: dict[str, np.ndarray], n: int, window: int) -> list[dict]:
    """The feature's top `n` sample blocks, each as the `window` tokens on either side of its peak."""
    from featureflow.analysis.features import top_blocks, windows_activations

    ctx = sample["blocks"].shape[1]
    blocks = top_blocks(stats, f, ctx, n)
    out = []
    for block, acts in zip(blocks, windows_activations(csc, f, [b * ctx for b in blocks], ctx), strict=True):
        pos = int(np.argmax(acts))  # the block's top position (the first of equal ones, as in top_rows)
        lo, hi = max(0, pos - window), min(ctx, pos + window + 1)
        out.append({"block": block, "corpus": str(sample["corpora"][sample["corpus"][block]]),
                    "tokens": sample["blocks"][block, lo:hi].tolist(), "acts": _rounded(acts[lo:hi], 3)})
    return out


def load_explanations(jsonl: str | Path | None) -> dict[int, list[Any]]:
    """feature -> [explanation, score] from an autointerp jsonl (none: {})."""
    if not jsonl:
        return {}
    rows = [json.loads(line) for line in Path(jsonl).read_text().splitlines()]
    return {int(r["feature"]): [r["explanation"], r["score"]] for r in rows if r["explanation"]}


def _logits(stats: dict[str, np.ndarray], f: int) -> list[list[list[Any]]] | None:
    """[[token id, logit effect] promoted], [... suppressed]] of feature f, when computed."""
    if "logit_up_ids" not in stats:
        return None
    return [[[int(t), _r(v, 3)] for t, v in zip(stats[f"logit_{side}_ids"][f], stats[f"logit_{side}"][f], strict=True)]
            for side in ("up", "down")]


@dataclass(frozen=True)
class ModelPage:
    """What one model's browser pages show: feature statistics and table, lineage edges, activations, explanations."""

    stats: dict[str, np.ndarray]
    table: Any
    edges: list[dict[str, Any]]
    acts: Any
    explanations: dict[int, list[Any]] | None = None


def write_model_pages(model: str, out_dir: str | Path, page: ModelPage, sample: dict[str, np.ndarray],
                      settings: BrowserSettings) -> None:
    """index.html, feature.html and the data files of one model (with autointerp's explanations when given)."""
    stats, table, edges, acts, explanations = page.stats, page.table, page.edges, page.acts, page.explanations
    hypotheses, contexts, window = list(settings.hypotheses), settings.contexts, settings.window
    explanations = explanations or {}
    folder = Path(out_dir) / model
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    d_sae = len(stats["density"])
    llr = np.stack([table[f"llr_{h}"].to_numpy(dtype=np.float64) for h in hypotheses], axis=1) if hypotheses else np.zeros((d_sae, 0))
    info = {"model": model, "d_sae": d_sae, "chunk": CHUNK, "hypotheses": hypotheses,
            "hypothesis_shares": [_r(stats[f"p_{h}"]) if f"p_{h}" in stats else None for h in hypotheses],
            "edges": [{"label": e["label"], "side": e["side"], "other": e["other"], "null": e.get("null")} for e in edges]}
    rows = [{"id": f, "density": _r(stats["density"][f]), "max": _r(stats["max"][f]), "llr": [_r(v) for v in llr[f]],
             "partners": _partners(edges, f, full=False), "top_tokens": [int(t) for t in stats["top_token_ids"][f][:3] if t >= 0],
             "explanation": explanations.get(f)}
            for f in range(d_sae)]
    (data / "index.js").write_text(_js("FF_INDEX", None, {**info, "rows": rows}) + _js("FF_INFO", None, info))
    csc = acts.tocsc()
    csc.sort_indices()
    for start in range(0, d_sae, CHUNK):
        chunk = []
        for f in range(start, min(d_sae, start + CHUNK)):
            chunk.append({"density": _r(stats["density"][f]), "max": _r(stats["max"][f]), "mean": _r(stats["mean"][f]),
                          "llr": [_r(v) for v in llr[f]], "partners": _partners(edges, f, full=True),
                          "top_tokens": [[int(t), _r(m)] for t, m in zip(stats["top_token_ids"][f], stats["top_token_means"][f], strict=True)
                                         if t >= 0],
                          "hist": stats["hist"][f].tolist(), "contexts": _contexts(f, stats, csc, sample, contexts, window),
                          "explanation": explanations.get(f), "logits": _logits(stats, f)})
        (data / f"chunk_{start // CHUNK:05d}.js").write_text(_js("FF_CHUNKS", str(start // CHUNK), chunk))
    title = f"featureflow: {model}"
    (folder / "index.html").write_text(SHELL.format(title=title, extra="", page="index"))
    (folder / "feature.html").write_text(SHELL.format(title=title + " feature", page="feature",
                                                      extra='<script src="../assets/plotly.min.js"></script>'))


def build_browser(files: LineageFiles, spec: dict[str, Any], settings: BrowserSettings, out_dir: str | Path) -> dict[str, Any]:
    """The `browser` rule: assets and every model's pages; returns the size and time it took."""
    import pandas as pd

    from featureflow.analysis.features import load_feature_stats, token_texts
    from featureflow.flow import load_acts, load_sample

    t0 = time.time()
    write_assets(out_dir, token_texts(files.tokenizer_dir))
    sample = load_sample(files.sample)
    matches = load_edge_matches(files)
    for m in files.models:
        page = ModelPage(stats=load_feature_stats(files.stats[m]), table=pd.read_csv(files.tables[m]),
                         edges=model_edges(m, spec["edges"], matches), acts=load_acts(files.acts[m])[0],
                         explanations=load_explanations(files.interp.get(m)))
        write_model_pages(m, out_dir, page, sample, settings)
    size = sum(p.stat().st_size for p in Path(out_dir).rglob("*") if p.is_file())
    return {"seconds": round(time.time() - t0, 2), "bytes": size}
