"""Regenerate the docs site's generated parts from a finished demo run (`make docs` after `make run`).

- the reproduction table of docs/reproduction.md ("Paper vs this run"), from ``results/reproduction.md``;
- the configuration reference of docs/configuration.md, from the config schema (``featureflow.report.schema_doc``);
- the small figures under ``docs/``: Figure 2, Figure 5, the case-study page (Figure 3) and the threshold curve,
  drawn by headless Chromium at page size.

Each generated part sits between two marker lines; the rest of each page is left alone.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from featureflow.report.schema_doc import config_reference, replace_between, replace_reference

REPO = Path(__file__).resolve().parents[1]
TABLE_START = "<!-- reproduction:start: generated from results/reproduction.md by `make docs` (scripts/update_docs.py); do not edit -->"
TABLE_END = "<!-- reproduction:end -->"
# (docs file, results file, width, height): PNGs are shown scaled into the box, pages are captured at that size
FIGURES = [("fig2_demo.png", "flow/fig2_sankey.png", 800, 500),
           ("fig5_demo.png", "merge/luastories/fig5_merge_sweep.png", 800, 500),
           ("case_study_demo.png", "analysis/fig3_persisting_feature.html", 900, 620),
           ("threshold_curve_demo.png", "flow/threshold_curve.png", 800, 440)]


def reproduction_section(results: Path) -> str:
    """The run's reproduction table with its headings moved below the page's section level."""
    lines = (results / "reproduction.md").read_text().splitlines()
    body = [f"#{line}" if line.startswith("## ") else line for line in lines if not line.startswith("# ")]
    return "\n".join([TABLE_START, *body, TABLE_END])


def draw(source: Path, out: Path, width: int, height: int) -> None:
    """A PNG of `source` (an image, scaled to the box, or a page) by headless Chromium."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("Chromium is needed to draw the docs' figures (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        page = source
        if source.suffix == ".png":
            page = Path(tmp) / "figure.html"
            page.write_text(f'<html><body style="margin:0"><img src="{source.resolve().as_uri()}" '
                            f'style="width:{width}px;height:{height}px;object-fit:contain"></body></html>')
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--window-size={width},{height}",
                        f"--screenshot={out}", page.resolve().as_uri()], check=True, capture_output=True, timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=REPO / "results", help="the demo run's results folder")
    ap.add_argument("--docs", type=Path, default=REPO / "docs", help="the site's pages")
    args = ap.parse_args()
    table = args.docs / "reproduction.md"
    table.write_text(replace_between(table.read_text(), TABLE_START.split(":")[0], TABLE_END, reproduction_section(args.results)))
    reference = args.docs / "configuration.md"
    reference.write_text(replace_reference(reference.read_text(), config_reference()))
    for name, source, width, height in FIGURES:
        draw(args.results / source, args.docs / name, width, height)
        print(f"{args.docs / name}: {(args.docs / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
