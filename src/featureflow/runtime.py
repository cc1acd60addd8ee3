"""How jobs run: the torch device, checkpoints that let a killed job resume, and the training log a
running job can be watched by. torch is imported where it is used: a CPU job that never touches it
(correlation, its null) starts without the 2 s that importing torch takes."""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """Every checkpoint of a run is unreadable: refusing to restart from zero silently."""


def pick_device(choice: str) -> torch.device:
    import torch

    return torch.device("cuda" if runs_on_cuda(choice) else "cpu")


def has_gpu_device_node() -> bool:
    """Whether the machine has a GPU device node (NVIDIA's /dev/nvidiaN, AMD's /dev/kfd for ROCm builds,
    WSL2's /dev/dxg): without one no CUDA device can exist."""
    return any(Path("/dev").glob("nvidia[0-9]*")) or Path("/dev/kfd").exists() or Path("/dev/dxg").exists()


def runs_on_cuda(choice: str) -> bool:
    """Whether a job on device `choice` ("auto", "cuda", "cpu") runs on CUDA. "auto" asks torch only where
    `has_gpu_device_node`: a CPU-only job need not import torch at all."""
    if choice != "auto":
        return choice == "cuda"
    if not has_gpu_device_node():
        return False
    import torch

    return torch.cuda.is_available()


def use_compile(choice: bool | str, dev: torch.device) -> bool:
    """Whether a training job compiles its step (and takes the fused optimizer): "auto" means on CUDA."""
    return dev.type == "cuda" if choice == "auto" else bool(choice)


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    return sorted(ckpt_dir.glob("step_*.pt"), reverse=True)


def save_checkpoint(ckpt_dir: Path, state: dict[str, Any], keep: int = 2) -> Path:
    """Write atomically (temp file + rename) and keep the newest `keep` checkpoints."""
    import torch

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
    import torch

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


class TrainingRun:
    """The loop around one training job's steps, shared by the LM and the SAE jobs: resume from the
    newest checkpoint of this exact run (same `fingerprint`), log rows as they come, checkpoint
    atomically every `checkpoint_every` steps, keep the wall time across resumes, tidy up at the end::

        run = TrainingRun(f"sae {name}", ckpt_dir, fingerprint, steps, checkpoint_every)
        state = run.resume()          # None, or what `save_checkpoint` saved: restore the job's own objects from it
        run.open_log(log_path, FIELDS, tensorboard)
        for step in run.steps():      # from the resumed step on, with a progress bar
            ...                       # one step; run.log(row) at log steps
            if run.checkpoint_due(step + 1):
                run.save_checkpoint(step + 1, {"model": model.state_dict(), ...})
        run.finish(keep_checkpoints)

    What the job saves is its own; the run adds the step, the log rows, the elapsed time and the fingerprint.
    """

    def __init__(self, label: str, ckpt_dir: str | Path, fingerprint: str, total_steps: int, checkpoint_every: int):
        self.label, self.ckpt_dir, self.fingerprint = label, Path(ckpt_dir), fingerprint
        self.total_steps, self.checkpoint_every = total_steps, checkpoint_every
        self.start, self.rows, self.elapsed_before = 0, [], 0.0
        self.bar: Any = None
        self._log: TrainLog | None = None
        self._t0 = time.time()

    def resume(self) -> dict[str, Any] | None:
        """The newest checkpoint of this run (and the step, log rows and time it holds), or None."""
        state = load_latest_checkpoint(self.ckpt_dir, self.fingerprint)
        if state is not None:
            self.start, self.rows, self.elapsed_before = state["step"], state["log_rows"], state["elapsed_s"]
        return state

    def open_log(self, path: str | Path, fields: Iterable[str], tensorboard: bool) -> None:
        """Start the per-step log, with the rows a resumed run had logged."""
        self._log = TrainLog(path, fields, self.rows, tensorboard=tensorboard)

    def steps(self) -> Iterator[int]:
        """The steps left to run, shown as a progress bar in the job's log."""
        self._t0 = time.time()
        self.bar = tqdm(range(self.start, self.total_steps), initial=self.start, total=self.total_steps, desc=self.label,
                        mininterval=10)
        yield from self.bar

    def elapsed(self) -> float:
        """Wall seconds of training so far, earlier runs of a resumed job included."""
        return self.elapsed_before + time.time() - self._t0

    def log(self, row: dict[str, Any]) -> None:
        if self._log is None:
            raise RuntimeError("TrainingRun.log before open_log")
        self._log.append(row)

    def checkpoint_due(self, done: int) -> bool:
        """Whether a checkpoint is due after `done` steps (every `checkpoint_every`; none after the last step)."""
        return done % self.checkpoint_every == 0 and done < self.total_steps

    def save_checkpoint(self, done: int, state: dict[str, Any]) -> None:
        """Save the job's `state` after `done` steps, atomically, with the run's own step, log rows, time and fingerprint."""
        save_checkpoint(self.ckpt_dir, {"step": done, **state, "log_rows": self._log.rows if self._log else [],
                                        "elapsed_s": self.elapsed(), "fingerprint": self.fingerprint})

    def finish(self, keep_checkpoints: bool) -> None:
        """Close the log; delete the checkpoints unless they are to be kept."""
        if self._log is not None:
            self._log.close()
        if not keep_checkpoints:
            for path in list_checkpoints(self.ckpt_dir):
                path.unlink()


class TrainLog:
    """A training job's per-step CSV log, written and flushed row by row so that a running job can be
    followed (``python -m featureflow.curves results``), with TensorBoard event files beside it when
    `tensorboard` is set and the package is installed.

    A resumed job writes the file again from the rows its checkpoint holds (`rows`); TensorBoard is
    told to drop the events a killed run logged, and gets the same rows again.
    """

    def __init__(self, path: str | Path, fields: Iterable[str], rows: Iterable[dict[str, Any]] = (), *, tensorboard: bool):
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
