"""The reproduction table as Markdown and as a self-contained HTML page (no scripts, all text escaped)."""

from __future__ import annotations

import re
from html import escape
from itertools import groupby

from featureflow.report.reproduction import DIFFERS, MARKS, MEETS, NO_PAPER, NOT_RUN, TALLY_WORDS, Row, ScaleRow, tally
from featureflow.sae import OFF_TARGET_RULE

TITLE = "Reproduction: Horn & Elliott vs this run"
PAPER = "Horn & Elliott, <i>Tracking Universal Features Through Fine-Tuning and Model Merging</i>"
CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.mark { border-radius: 3px; font-size: 85%; padding: 0 .4em; white-space: nowrap; }
.meets { background: #d8f0d8; } .differs { background: #f8dcd0; } .not-run { background: #e8e8e8; } .no-paper-number { background: #e4ecf8; }
.scale { background: #fff4d6; border-left: 4px solid #e0a800; padding: .6em 1em; }
.at-scale { color: #2a7d2a; } .below-scale { color: #b04000; }
.grid { display: grid; gap: 1em; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); }
.card { border: 1px solid #ddd; border-radius: 4px; padding: .6em .8em; }
.card img { max-width: 100%; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def page(title: str, body: str) -> str:
    """A complete offline HTML page with the shared style."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def scale_verdict(scale: list[ScaleRow]) -> str:
    below = [s.quantity for s in scale if not s.at_paper_scale]
    if not below:
        return "This run is at the paper's scale."
    return ("This run is **not** at the paper's scale (" + "; ".join(below) + " differ): read its numbers as a "
            "check of the method, not as the paper's measurements.")


def verdict_html(scale: list[ScaleRow]) -> str:
    return escape(scale_verdict(scale)).replace("**not**", "<b>not</b>")


OFF_TARGET_STYLE = "background: #fde2e1; border-left: 4px solid #c62828; padding: .6em 1em; margin: 1em 0;"


def _off_target_lead(off_target: dict[str, list[str]]) -> str:
    return (f"SAEs far off target: {', '.join(off_target)}. Their features do not form a sparse dictionary, so the counts, "
            "classes, case studies and autointerp of this run that use them are not findings.")


def off_target_markdown(off_target: dict[str, list[str]] | None) -> list[str]:
    """A warning naming each SAE far off target (featureflow.sae.targets), as Markdown lines; none when all are fine."""
    if not off_target:
        return []
    out = [f"> **Warning: {_off_target_lead(off_target)}**", ">"]
    out += [f"> - {m}: {'; '.join(why)}" for m, why in off_target.items()]
    return [*out, ">", f"> Far off: {OFF_TARGET_RULE} (`featureflow/sae/targets.py`).", ""]


def off_target_html(off_target: dict[str, list[str]] | None) -> str:
    """The same warning as a box for the top of a page; "" when all SAEs are fine."""
    if not off_target:
        return ""
    items = "".join(f"<li><b>{escape(m)}</b>: {escape('; '.join(why))}</li>" for m, why in off_target.items())
    return (f'<div class="off-target" style="{OFF_TARGET_STYLE}"><p><b>Warning: {escape(_off_target_lead(off_target))}</b></p>'
            f"<ul>{items}</ul><p>Far off: {escape(OFF_TARGET_RULE)} (<code>featureflow/sae/targets.py</code>).</p></div>")


def _tally_line(rows: list[Row]) -> str:
    t = tally(rows)
    return ", ".join(f"{t[m]} {TALLY_WORDS[m]}" for m in MARKS if t[m])


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(scale: list[ScaleRow], rows: list[Row], off_target: dict[str, list[str]] | None = None) -> str:
    """The table as GitHub Markdown (docs/reproduction.md includes it), below a warning naming the SAEs far off target."""
    out = [f"# {TITLE}", "", *off_target_markdown(off_target), scale_verdict(scale), "", "| scale | paper | this run |", "|---|---|---|"]
    out += [f"| {s.quantity} | {s.paper} | {s.ours}{'' if s.at_paper_scale else ' (below)'} |" for s in scale]
    out += ["", f"Of {len(rows)} rows, {_tally_line(rows)}. Marks: **{MEETS}** (the row's criterion holds), {DIFFERS}, {NOT_RUN}, "
            f"{NO_PAPER}.", ""]
    for section, group in groupby(rows, key=lambda r: r.section):
        out += [f"## {section}", "", "| quantity | paper | this run | mark | criterion |", "|---|---|---|---|---|"]
        for r in group:
            mark = f"**{r.mark}**" if r.mark == MEETS else r.mark
            out.append(f"| {_md_cell(r.quantity)} | {_md_cell(r.paper)} | {_md_cell(r.ours)} | {mark} | {_md_cell(r.criterion)} |")
        out.append("")
    return "\n".join(out)


def _text(text: str) -> str:
    """Escaped text with `code` spans."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", escape(text))


def mark_html(mark: str) -> str:
    return f'<span class="mark {mark.replace(" ", "-")}">{escape(mark)}</span>'


def to_html(scale: list[ScaleRow], rows: list[Row], off_target: dict[str, list[str]] | None = None) -> str:
    """The table as a self-contained HTML page, below a warning naming the SAEs far off target."""
    body = [f"<h1>{escape(TITLE)}</h1>", *filter(None, [off_target_html(off_target)]), f"<p>{PAPER} beside the numbers of this run. "
            '<a href="index.html">All results of this run</a>.</p>',
            f'<div class="scale"><p>{verdict_html(scale)}</p><table><tr><th>scale</th><th>paper</th><th>this run</th></tr>']
    for s in scale:
        cls = "at-scale" if s.at_paper_scale else "below-scale"
        body.append(f'<tr><td>{escape(s.quantity)}</td><td class="num">{escape(s.paper)}</td>'
                    f'<td class="num {cls}">{escape(s.ours)}</td></tr>')
    body.append("</table></div>")
    body.append(f"<p>Of {len(rows)} rows, {escape(_tally_line(rows))}. A row <b>meets</b> the paper when its criterion holds.</p>")
    for section, group in groupby(rows, key=lambda r: r.section):
        body.append(f"<h2>{escape(section)}</h2><table><tr><th>quantity</th><th>paper</th><th>this run</th><th>mark</th>"
                    "<th>criterion</th></tr>")
        body += [f'<tr><td>{escape(r.quantity)}</td><td class="num">{escape(r.paper)}</td><td class="num">{escape(r.ours)}</td>'
                 f"<td>{mark_html(r.mark)}</td><td>{_text(r.criterion)}</td></tr>" for r in group]
        body.append("</table>")
    return page(TITLE, "\n".join(body))
