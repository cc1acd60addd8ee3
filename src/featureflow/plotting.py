"""Shared figure helpers (plotly): save as self-contained HTML and PNG, and the colour cycle.

PNG export goes through kaleido, which needs a Chromium/Chrome on the machine
(Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
COLOURS = ("#1f77b4", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
EMERGED, GONE = "#2ca02c", "#7f7f7f"


def save_figure(fig: Any, out_html: str | Path, out_png: str | Path, width: int = 800, height: int = 500) -> None:
    """Write `fig` as HTML (plotly.js embedded, works offline) and PNG."""
    fig.write_html(str(out_html), include_plotlyjs=True, full_html=True)
    try:
        fig.write_image(str(out_png), width=width, height=height, scale=2)
    except Exception as err:  # kaleido without a browser raises several error types
        raise RuntimeError(f"{out_png}: PNG export failed ({type(err).__name__}: {err}); "
                           "install Chromium (apt-get install chromium)") from None
