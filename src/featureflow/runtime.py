"""How jobs run: the torch device, checkpoints that let a killed job resume, and the training log a
running job can be watched by."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """Every checkpoint of a run is unreadable: refusing to restart from zero silently."""


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def use_compile(choice: bool | str, dev: torch.device) -> bool:
    """Whether a training job compiles its step (and takes the fused optimizer): "auto" means on CUDA."""
    return dev.type == "cuda" if choice == "auto" else bool(choice)


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    return sorted(ckpt_dir.glob("step_*.pt"), reverse=True)


def save_checkpoint(ckpt_dir: Path, state: dict[str, Any], keep: int = 2) -> Path:
    """Write atomically (temp file + rename) and keep the newest `keep` checkpoints."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = ckpt_dir / f"step_{state['step']:08d}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    for old in list_checkpoints(ckpt_dir)[keep:]:
        old.unlink()
    return path


def load_latest_checkpoint(ckpt_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    """Newest readable checkpoint of this exact run; corrupt ones are reported and skipped."""
    found = list_checkpoints(ckpt_dir)
    corrupt = []
    for path in found:
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # a truncated or garbled file: fall back to the previous one
            log.error("checkpoint %s is corrupt (%s: %s); trying an older one", path, type(err).__name__, err)
            corrupt.append(path)
            continue
        if state.get("fingerprint") != fingerprint:
            log.warning("checkpoint %s belongs to other settings or data; starting a new run", path)
            return None
        log.info("resuming from %s (step %d)", path, state["step"])
        return state
    if corrupt:
        raise CheckpointError(f"all checkpoints in {ckpt_dir} are corrupt ({', '.join(p.name for p in corrupt)}); "
                              "delete the folder to train from scratch")
    return None


class TrainLog:
    """A training job's per-step CSV log, written and flushed row by row so that a running job can be
    followed (``python -m featureflow.curves results``), with TensorBoard event files beside it when
    `tensorboard` is set and the package is installed.

    A resumed job writes the file again from the rows its checkpoint holds (`rows`); TensorBoard is
    told to drop the events a killed run logged, and gets the same rows again.
    """

    def __init__(self, path: str | Path, fields: Iterable[str], rows: Iterable[dict[str, Any]] = (), tensorboard: bool = False):
        self.path, self.rows = Path(path), list(rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=tuple(fields))
        self._csv.writeheader()
        self._tb = _summary_writer(self.path) if tensorboard else None
        for row in self.rows:
            self._write(row)
        self._file.flush()

    def _write(self, row: dict[str, Any]) -> None:
        self._csv.writerow(row)
        if self._tb is not None:
            for key, value in row.items():
                if key != "step":
                    self._tb.add_scalar(key, value, row["step"])

    def append(self, row: dict[str, Any]) -> None:
        """Log one row; it is flushed to the file (a reader sees it) before this returns."""
        self.rows.append(row)
        self._write(row)
        self._file.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _summary_writer(csv_path: Path) -> Any:
    """A TensorBoard SummaryWriter into the CSV's folder (dropping events of earlier runs), or None without tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is on but the tensorboard package is not installed (pip install tensorboard): "
                    "writing %s only", csv_path)
        return None
    return SummaryWriter(log_dir=str(csv_path.parent), purge_step=0)
