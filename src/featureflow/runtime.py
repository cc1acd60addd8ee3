"""How jobs run: the torch device, and checkpoints that let a killed job resume."""

from __future__ import annotations

import logging
import os
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
