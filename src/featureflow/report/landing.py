"""``results/index.html``: one offline page that links every figure, table and page of a run."""

from __future__ import annotations

from html import escape
from typing import Any

from featureflow.report.render import mark_html, off_target_html, page, verdict_html
from featureflow.report.reproduction import MARKS, Row, ScaleRow, tally

SNAKEMAKE_REPORT = "report.html"


def _item(x: dict[str, Any]) -> str:
    thumb = f'<a href="{escape(x["path"])}"><img src="{escape(x["thumb"])}" alt="{escape(x["label"])}"></a>' if x.get("thumb") else ""
    extra = "".join(f' · <a href="{escape(p)}">{escape(lbl)}</a>' for lbl, p in x.get("also", []))
    note = f'<br><small>{escape(x["note"])}</small>' if x.get("note") else ""
    return f'<div class="card">{thumb}<a href="{escape(x["path"])}">{escape(x["label"])}</a>{extra}{note}</div>'


def landing_html(sections: list[dict[str, Any]], spec: dict[str, Any], scale: list[ScaleRow], rows: list[Row],
                 results_dir: str, off_target: dict[str, list[str]] | None = None) -> str:
    """The landing page: a warning naming the SAEs far off target (if any), the lineage, the reproduction
    verdict, then every output by section.

    `sections`: [{"title", "items": [{"label", "path", "thumb"?, "also"?: [(label, path)], "note"?}]}],
    paths relative to the results folder (where the page lives)."""
    t = tally(rows)
    lineage = "".join(f"<li><b>{escape(m)}</b>" + (f" ← {escape(' + '.join(ins))}" if ins else " (from scratch)") + "</li>"
                      for m, ins in spec["inputs"].items())
    body = ["<h1>featureflow: results of this run</h1>", *filter(None, [off_target_html(off_target)]),
            f"<p>Lineage:</p><ul>{lineage}</ul>",
            f'<div class="scale"><p>{verdict_html(scale)}</p><p><a href="reproduction.html"><b>Reproduction table</b></a> '
            f"(paper vs this run): " + " ".join(f"{mark_html(m)} {t[m]}" for m in MARKS if t[m])
            + ' · <a href="reproduction.md">Markdown</a></p></div>']
    for sec in sections:
        body.append(f'<h2>{escape(sec["title"])}</h2>')
        if sec.get("note"):
            body.append(f"<p>{escape(sec['note'])}</p>")
        body.append('<div class="grid">' + "".join(_item(x) for x in sec["items"]) + "</div>")
    body.append(f'<h2>Snakemake report</h2><p><a href="{SNAKEMAKE_REPORT}">report.html</a>: every figure and table with '
                "its caption, the workflow graph and each rule's runtime. <code>make run</code> writes it; "
                f"after a plain <code>snakemake</code> run, make it with "
                f"<code>snakemake --report {escape(results_dir)}/{SNAKEMAKE_REPORT}</code>.</p>")
    return page("featureflow results", "\n".join(body))
