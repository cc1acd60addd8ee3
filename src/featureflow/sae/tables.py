"""The table of every SAE's metrics, results/sae/metrics.tsv, with the paper's targets beside. Light
work: no torch here, so its job starts in a second."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from featureflow.paper import SAE_TARGETS


def metrics_table(metric_files: dict[str, str | Path], out_tsv: str | Path) -> list[dict[str, Any]]:
    """One row per model with the paper's targets beside (L0 25-35, MSE < 0.0067, explained loss > 0.88)."""
    keys = ("l0", "mse", "mse_normalised", "explained_variance", "explained_loss", "dead_fraction", "dense_fraction")
    rows = [{"model": m, **{k: json.loads(Path(p).read_text())[k] for k in keys}} for m, p in metric_files.items()]
    lines = ["\t".join(["model", *keys])]
    lines += ["\t".join([r["model"], *(f"{r[k]:.4f}" for k in keys)]) for r in rows]
    lines.append("\t".join(["paper target", SAE_TARGETS["l0"], SAE_TARGETS["mse"], "", "", SAE_TARGETS["explained_loss"], "", ""]))
    Path(out_tsv).write_text("\n".join(lines) + "\n")
    return rows
