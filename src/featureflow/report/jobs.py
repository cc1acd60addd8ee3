"""The `report` rule: the reproduction table (Markdown and HTML) and the landing page."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featureflow.report.landing import landing_html
from featureflow.report.render import to_html, to_markdown
from featureflow.report.reproduction import load_run, reproduction_rows, scale_rows, tally
from featureflow.sae import off_target_saes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportPages:
    """The report's three output pages: reproduction.md, reproduction.html and index.html."""

    md: str | Path
    html: str | Path
    index: str | Path


def write_report(files: dict[str, Any], spec: dict[str, Any], sample_tokens: int, sections: list[dict[str, Any]],
                 results_dir: str, pages: ReportPages) -> dict[str, int]:
    """Write the three `pages` (reproduction.md, reproduction.html, index.html); return the count of rows per mark.

    SAEs far off target (featureflow.sae.targets) are named at the top of all three and in the log."""
    run = load_run(files, spec, sample_tokens)
    scale, rows = scale_rows(run), reproduction_rows(run)
    off = off_target_saes(run["sae_metrics"])
    for model, why in off.items():
        log.warning("SAE of %s is far off target (%s): the report says its downstream numbers are not findings", model, "; ".join(why))
    Path(pages.md).write_text(to_markdown(scale, rows, off))
    Path(pages.html).write_text(to_html(scale, rows, off))
    Path(pages.index).write_text(landing_html(sections, spec, scale, rows, results_dir, off))
    counts = tally(rows)
    log.info("reproduction table: %d rows (%s); scale rows below the paper's: %d", len(rows),
             ", ".join(f"{v} {k}" for k, v in counts.items()), sum(not s.at_paper_scale for s in scale))
    return counts
