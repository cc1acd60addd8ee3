"""Shared figure helpers (plotly): save as self-contained HTML and PNG, and the colour cycle.

PNG export goes through kaleido, which needs a Chromium/Chrome on the machine
(Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
COLOURS = ("#1f77b4", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
EMERGED, GONE = "#2ca02c", "#7f7f7f"


def save_figure(fig: Any, out_html: str | Path, out_png: str | Path | None, width: int = 800, height: int = 500) -> None:
    """Write `fig` as HTML (plotly.js embedded, works offline) and, unless `out_png` is None (the
    config's `figures.png: false`), as PNG (twice its size, by kaleido).

    kaleido gets plotly.js from the plotly package and MathJax off: its page would otherwise fetch
    MathJax from a CDN for every figure (none uses TeX), a request that a compute node without
    network waits on. The PNG has the same bytes as ``fig.write_image``'s."""
    fig.write_html(str(out_html), include_plotlyjs=True, full_html=True)
    if out_png is None:
        return
    import kaleido

    try:
        png = kaleido.calc_fig_sync(fig.to_dict(), opts={"format": "png", "width": width, "height": height, "scale": 2},
                                    kopts={"mathjax": False})
    except Exception as err:  # kaleido without a browser raises several error types
        raise RuntimeError(f"{out_png}: PNG export failed ({type(err).__name__}: {err}); "
                           "install Chromium (apt-get install chromium)") from None
    Path(out_png).write_bytes(png)


def log_axis(values: Iterable[float | None]) -> dict[str, Any]:
    """A log axis for `values`: ticks at powers of ten only (dtick 1) once they span about a decade or
    more, where plotly would also tick 2 and 5 of every decade, labelled by that digit alone ("5, 2,
    100, 5, 2, 10"); over less, plotly's own ticks, labelled in full (0.2, 0.3, 0.5)."""
    shown = [float(x) for x in values if x is not None and math.isfinite(float(x)) and float(x) > 0]
    wide = bool(shown) and math.log10(max(shown) / min(shown)) >= 0.9
    return {"type": "log", **({"dtick": 1} if wide else {})}
