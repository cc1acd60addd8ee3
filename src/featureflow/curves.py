"""Training curves: one figure per training stage (LM, SAE), every model's curves, drawn from the
jobs' ``train_log.csv`` files, finished or still being written.

Training jobs write their log row by row (``featureflow.runtime.TrainLog``), so the figures can
follow a run in progress. The rules ``lm_curves`` and ``sae_curves`` draw them once every job is
done; while jobs run, redraw them from whatever has been logged so far::

    python -m featureflow.curves results              # results/{lm,sae}/training_curves.html
    python -m featureflow.curves results --every 60   # again every minute, until Ctrl-C

A model whose job has not finished (its log exists, the file its job writes after the log does
not: ``train_meta.json``, ``featureflow_sae.json``) is marked "running" in the legend and the title.
A finished model whose log has no rows was not trained here (an SAE imported in SAELens format,
``featureflow.sae.imports``): it draws no curve, and the title names it.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featureflow.paths import ResultPaths
from featureflow.plotting import COLOURS, log_axis, save_figure


@dataclass(frozen=True)
class Panel:
    """One subplot: a column of the log."""

    column: str
    title: str
    log_y: bool = False


@dataclass(frozen=True)
class Stage:
    """A training stage's log (a result-path key with `{model}`), the file its job writes after the
    log (present = finished), its panels, and the figure's result-path keys."""

    title: str
    log: str
    done: str
    panels: tuple[Panel, ...]
    html: str
    png: str
    height: int


STAGES = {
    "lm": Stage("Language-model training", "train_log", "train_meta",
                (Panel("loss", "training loss (cross-entropy, nats per token)"), Panel("lr", "learning rate")),
                "lm_curves_html", "lm_curves_png", 450),
    "sae": Stage("SAE training", "sae_train_log", "sae_extra",
                 (Panel("loss", "training loss (as logged)", log_y=True), Panel("mse", "MSE (training activations)", log_y=True),
                  Panel("l0", "L0 (features active per token)"), Panel("dead_fraction", "dead share of features")),
                 "sae_curves_html", "sae_curves_png", 750),
}


def read_log(path: str | Path) -> Any:
    """The complete rows of a training log (a pandas DataFrame; no rows yet: empty).

    A job may be writing the file right now: a last line without its newline is left out, and so is
    any row whose step is not a number.
    """
    import pandas as pd

    text = Path(path).read_text()
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if not text.strip():
        return pd.DataFrame({"step": []})
    rows = pd.read_csv(io.StringIO(text)).apply(pd.to_numeric, errors="coerce")
    return rows.dropna(subset=["step"])


def model_label(stage: str, model: str, done: str | Path) -> tuple[str, bool]:
    """(legend label, finished) of one model whose job writes `done` when it ends; a finished LM says what it was trained from."""
    done = Path(done)
    if not done.exists():
        return f"{model} (running)", False
    if stage == "lm":
        parent = json.loads(done.read_text()).get("parent")
        return f"{model} ({f'fine-tune of {parent}' if parent else 'from scratch'})", True
    return model, True


def curves_figure(stage: str, logs: dict[str, str | Path], done: dict[str, str | Path]) -> Any:
    """One subplot per panel of `stage`, one curve per model of `logs` ({model: train_log.csv}) against the step;
    `done` holds each model's file that says its job finished (see `Stage.done`)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    spec = STAGES[stage]
    cols = 2
    rows_n = -(-len(spec.panels) // cols)
    fig = make_subplots(rows=rows_n, cols=cols, subplot_titles=[p.title for p in spec.panels],
                        horizontal_spacing=0.1, vertical_spacing=0.14)
    running, untrained = [], []
    shown: list[list[float]] = [[] for _ in spec.panels]  # each panel's values, for its log axis
    for i, (model, path) in enumerate(logs.items()):
        rows = read_log(path)
        label, finished = model_label(stage, model, done[model])
        if finished and not len(rows):  # finished without a training step: nothing to draw
            untrained.append(model)
            continue
        if not finished:
            running.append(f"{model} at step {int(rows['step'].iloc[-1])}" if len(rows) else f"{model} (no rows yet)")
        colour = COLOURS[i % len(COLOURS)]
        for k, panel in enumerate(spec.panels):
            y = rows[panel.column] if panel.column in rows else [None] * len(rows)  # no rows yet: an empty curve
            shown[k] += list(y)
            fig.add_trace(go.Scatter(x=rows["step"], y=y, mode="lines", name=label, legendgroup=model,
                                     showlegend=k == 0, line={"color": colour, "dash": "solid" if finished else "dot"},
                                     hovertemplate=f"{model}<br>step %{{x}}<br>{panel.column} %{{y:.4g}}<extra></extra>"),
                          row=k // cols + 1, col=k % cols + 1)
    for k, panel in enumerate(spec.panels):
        fig.update_xaxes(title_text="step", row=k // cols + 1, col=k % cols + 1)
        fig.update_yaxes(row=k // cols + 1, col=k % cols + 1, **(log_axis(shown[k]) if panel.log_y else {"rangemode": "nonnegative"}))
    title = f"{spec.title}: {len(logs)} model{'s' * (len(logs) != 1)}"
    if untrained:
        title += f"; not trained here (no curve): {', '.join(untrained)}"
    if running:
        title += f"; still running: {', '.join(running)}"
    fig.update_layout(title=title, template="plotly_white", legend={"orientation": "h", "y": -0.15})
    return fig


def draw_curves(stage: str, logs: dict[str, str | Path], done: dict[str, str | Path], out_html: str | Path,
                out_png: str | Path | None = None) -> None:
    """Write the figure of `stage` (see `curves_figure`) as HTML (plotly.js embedded) and, given `out_png`, as PNG."""
    fig = curves_figure(stage, logs, done)
    Path(out_html).parent.mkdir(parents=True, exist_ok=True)
    if out_png is None:
        fig.write_html(str(out_html), include_plotlyjs=True, full_html=True)
    else:
        save_figure(fig, out_html, out_png, width=1000, height=STAGES[stage].height)


def find_logs(results_dir: str | Path, stage: str) -> dict[str, Path]:
    """{model: train_log.csv} of every model of `stage` that has logged anything, by model name."""
    pattern = ResultPaths(str(results_dir))(STAGES[stage].log, model="*")
    found = sorted(Path(results_dir).glob(pattern[len(str(results_dir)) + 1:]))
    return {path.parent.name: path for path in found}


def redraw(results_dir: str | Path, png: bool = False) -> dict[str, str | None]:
    """Draw every stage that has logs under `results_dir` into its result paths.

    Returns {stage: one line on its figure and models, or None when nothing is logged yet}.
    """
    paths, report = ResultPaths(str(results_dir)), {}
    for stage, spec in STAGES.items():
        logs = find_logs(results_dir, stage)
        if not logs:
            report[stage] = None
            continue
        done = {model: paths(spec.done, model=model) for model in logs}
        draw_curves(stage, logs, done, paths(spec.html), paths(spec.png) if png else None)
        states = []
        for model, path in logs.items():
            rows, (_, finished) = read_log(path), model_label(stage, model, done[model])
            step = int(rows["step"].iloc[-1]) if len(rows) else 0
            if finished and not len(rows):
                states.append(f"{model} not trained here")
            else:
                states.append(f"{model} {'done' if finished else 'running'} (step {step})")
        report[stage] = f"{paths(spec.html)}: {', '.join(states)}"
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m featureflow.curves", description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", help="the workflow's results folder (config key results_dir)")
    parser.add_argument("--png", action="store_true", help="also write the PNGs (needs Chromium)")
    parser.add_argument("--every", type=float, metavar="SECONDS", help="redraw every SECONDS until interrupted")
    args = parser.parse_args(argv)
    if not Path(args.results_dir).is_dir():
        parser.error(f"{args.results_dir} is not a folder")
    try:
        while True:
            drawn = redraw(args.results_dir, args.png)
            for stage, line in drawn.items():
                print(line or f"{stage}: nothing logged yet under {Path(args.results_dir) / stage}", flush=True)
            if not args.every:
                return 0 if any(drawn.values()) else 1
            time.sleep(args.every)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
