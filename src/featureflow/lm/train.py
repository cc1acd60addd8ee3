"""Train one language model of the lineage: from scratch or fine-tuned from its parent.

Inputs: the model's token mixture (``results/data/mixtures/{model}/train.npy``), the tokenizer
folder, and for a fine-tune the parent's model folder. Outputs::

    results/lm/{model}/              HF model folder (see featureflow.lm.model) + train_log.csv + train_meta.json
    results/checkpoints/lm/{model}/  step_XXXXXXXX.pt while training (deleted at the end unless kept)

Batches are a pure function of (seed, model, step): each epoch visits every block of
``block_size`` tokens once in a seeded order. Together with the saved optimizer, scheduler and RNG
states this makes a resumed run finish with the same weights as an uninterrupted one (on CPU).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featureflow.config import ConfigError
from featureflow.context import check_model_context
from featureflow.lm.folder import check_parent, save_model
from featureflow.lm.native import load_for_training
from featureflow.paths import TOKENIZER_META
from featureflow.runtime import TrainingRun, pick_device, use_compile
from featureflow.settings import Resources, TrainJob, TrainSettings

log = logging.getLogger(__name__)
LOG_FIELDS = ("step", "tokens", "loss", "lr", "elapsed_s")


def total_steps(n_blocks: int, block_size: int, s: TrainSettings) -> int:
    """Optimizer steps for the configured token budget or number of epochs."""
    blocks = s.tokens / block_size if s.tokens else s.epochs * n_blocks
    return max(1, math.ceil(blocks / s.batch_size))


def lr_factor(step: int, steps: int, s: TrainSettings) -> float:
    """Linear warm-up, then cosine decay to `min_lr_ratio` (multiplies the peak lr)."""
    if step < s.warmup_steps:
        return (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, steps - s.warmup_steps)
    return s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class BlockSampler:
    """Block indices of each step: epoch e visits all blocks in a permutation seeded by (seed, name, e)."""

    def __init__(self, n_blocks: int, batch_size: int, seed: int, name: str):
        self.n_blocks, self.batch_size = n_blocks, batch_size
        self.key = [seed, zlib.crc32(name.encode())]
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([*self.key, epoch]).permutation(self.n_blocks)}
        return self._perms[epoch]

    def batch(self, step: int) -> np.ndarray:
        positions = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        return np.array([self._perm(int(p // self.n_blocks))[p % self.n_blocks] for p in positions])


@dataclass(frozen=True)
class TrainFiles:
    """One training job's paths: its token mixture and tokenizer in, model folder, log, meta and checkpoints out."""

    mixture_npy: str | Path
    tokenizer_dir: str | Path
    out_dir: str | Path
    train_log: str | Path
    train_meta: str | Path
    ckpt_dir: str | Path


@dataclass(frozen=True)
class ParentModel:
    """The lineage model a fine-tune starts from: its model folder and its name."""

    model_dir: str | Path
    name: str | None = None


def train_model(name: str, files: TrainFiles, settings: TrainJob, seed: int, resources: Resources,
                parent: ParentModel | None = None) -> dict[str, Any]:
    """Train `name` on its mixture and save it as an HF model folder in `files.out_dir`; resumes from `files.ckpt_dir`.

    A fine-tune starts from the model folder of `parent`, a model from scratch (no parent) from
    seeded random weights. `files.train_log` (CSV, written as training goes) and `files.train_meta`
    (JSON, at the end) record the run.
    """
    parent_dir = parent.model_dir if parent is not None else None
    parent_name = parent.name if parent is not None else None
    mixture_npy, tokenizer_dir, train_log = files.mixture_npy, files.tokenizer_dir, files.train_log
    torch.set_num_threads(resources.threads)
    arch, s = settings.architecture, settings.schedule
    meta = json.loads((Path(tokenizer_dir) / TOKENIZER_META).read_text())
    if parent_dir is not None:
        check_parent(parent_dir, parent_name or str(parent_dir), name, arch, meta["vocab_size"], tokenizer_dir)
    ids = np.load(mixture_npy, mmap_mode="r")
    block = settings.context_size or arch.block_size
    n_blocks = ids.size // block
    if n_blocks < 1:
        raise ConfigError(f"{mixture_npy}: {ids.size} training tokens of '{name}' do not fill one block of {block} "
                          f"(lm.context_size); give its corpora more text or lower lm.context_size")
    steps = total_steps(n_blocks, block, s)
    dev = pick_device(resources.device)
    fingerprint = json.dumps({"arch": asdict(arch), "settings": asdict(s), "seed": seed, "tokens": int(ids.size),
                              "parent": str(parent_dir), "steps": steps, "block": block}, sort_keys=True)

    if parent_dir is not None:  # natively when it can (no transformers import), with the same gradients
        model = load_for_training(parent_dir)
        check_model_context(model.config, block, parent_name or str(parent_dir))
    else:  # transformers' initialisation
        from featureflow.lm.model import build_model

        model = build_model(arch, meta["vocab_size"], meta["eot_id"], seed)
    model.to(dev).train()
    compiled = use_compile(resources.compile, dev)
    # fused AdamW: one kernel for all parameters on CUDA (same update rule as the default one)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, betas=s.betas, weight_decay=s.weight_decay,
                            fused=compiled and dev.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: lr_factor(i, steps, s))
    sampler = BlockSampler(n_blocks, s.batch_size, seed, name)
    run = TrainingRun(f"train {name}", files.ckpt_dir, fingerprint, steps, settings.checkpoint_every)
    state = run.resume()
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
    start = run.start

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext()
    if compiled:
        model.compile()  # in place: the state dict keeps its names, checkpoints stay interchangeable
    # the loss is summed on the device and read at log steps only: .item() every step would make
    # the CPU wait for the GPU before it can prepare the next batch
    loss_sum, loss_n = torch.zeros((), dtype=torch.float64, device=dev), 0
    if state is not None and "log_window" in state:  # the steps since the last log row, so a resumed run logs the same rows
        loss_sum, loss_n = state["log_window"][0].to(dev), int(state["log_window"][1])
    log.info("%s: %d steps of %d x %d tokens on %s (start at %d; torch.compile %s)", name, steps, s.batch_size, block, dev,
             start, "on, fused AdamW" if compiled else "off")
    run.open_log(train_log, LOG_FIELDS, resources.tensorboard)
    for step in run.steps():
        rows_idx = sampler.batch(step)
        x = torch.from_numpy(np.stack([ids[i * block:(i + 1) * block] for i in rows_idx]).astype(np.int64)).to(dev, non_blocking=True)
        with autocast:
            loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if s.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        opt.step()
        sched.step()
        loss_sum, loss_n = loss_sum + loss.detach().double(), loss_n + 1
        done = step + 1
        if done % settings.log_every == 0 or done == steps:
            mean_loss = loss_sum.item() / loss_n
            run.log({"step": done, "tokens": done * s.batch_size * block, "loss": round(mean_loss, 5),
                     "lr": sched.get_last_lr()[0], "elapsed_s": round(run.elapsed(), 2)})
            this_run_s = run.elapsed() - run.elapsed_before
            run.bar.set_postfix(loss=f"{mean_loss:.3f}", tok_s=f"{(done - start) * s.batch_size * block / this_run_s:.0f}")
            loss_sum, loss_n = torch.zeros_like(loss_sum), 0
        if run.checkpoint_due(done):
            run.save_checkpoint(done, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                       "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                                       "log_window": (loss_sum.cpu(), loss_n)})

    model.to("cpu")
    save_model(model, tokenizer_dir, files.out_dir)
    summary = {"model": name, "parent": parent_name, "steps": steps, "tokens_seen": steps * s.batch_size * block,
               "mixture_tokens": int(ids.size), "epochs_equivalent": round(steps * s.batch_size / n_blocks, 3),
               "arch": asdict(arch), "settings": asdict(s), "seed": seed, "device": str(dev), "compiled": compiled,
               "train_seconds": round(run.elapsed(), 2), "resumed_from_step": start}
    Path(files.train_meta).write_text(json.dumps(summary, indent=2) + "\n")
    run.finish(settings.keep_checkpoints)  # after the model is saved: a job killed before keeps its checkpoints
    return summary
