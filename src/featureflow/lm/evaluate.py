"""Next-token accuracy and loss of a model on validation token files (the paper's merge metric).

Output: results/lm/{model}/eval.json, {corpus: {loss, accuracy, tokens}} for every corpus. The table of
all models (results/lm/eval.tsv) is featureflow.lm.tables, which needs no torch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featureflow.context import check_model_context
from featureflow.data import load_blocks
from featureflow.runtime import pick_device
from featureflow.settings import Resources

log = logging.getLogger(__name__)


# Logits one evaluation batch may hold: 2**28 floats, 1 GiB per copy (3 GiB for the three copies). The demo's
# batches (64 blocks of 128 tokens, 4,096-token vocabulary) are far below it; the paper's (64 x 256 at Mistral's
# 32,000) run 32 blocks at a time; a 1024-token context at a 49,152-token vocabulary runs 5.
LOGITS_BUDGET = 2**28
LOGITS_COPIES = 3  # the logits, their float32 shifted copy, and cross-entropy's log-softmax


def logits_batch(batch_size: int, block: int, vocab: int) -> int:
    """Blocks per forward pass: `batch_size`, or fewer so that one batch's logits stay within LOGITS_BUDGET."""
    return max(1, min(batch_size, LOGITS_BUDGET // (block * vocab)))


def eval_memory_mb(model: torch.nn.Module, batch_size: int, block: int) -> dict[str, float]:
    """Estimated peak of a next-token evaluation (MB): float32 weights plus LOGITS_COPIES x batch x block x vocab,
    and the blocks per batch (`logits_batch`) it assumes."""
    weights = 4 * sum(p.numel() for p in model.parameters())
    blocks = logits_batch(batch_size, block, model.config.vocab_size)
    logits = LOGITS_COPIES * 4 * blocks * block * model.config.vocab_size
    return {"weights": weights / 2**20, "logits": logits / 2**20, "total": (weights + logits) / 2**20, "blocks": blocks}


@torch.no_grad()
def next_token_metrics(model: torch.nn.Module, blocks: np.ndarray, batch_size: int = 64) -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy of predicting token i+1 from tokens <= i in each block
    (`batch_size` blocks at a time, fewer where their logits would pass LOGITS_BUDGET)."""
    model.eval()
    device = next(model.parameters()).device
    batch_size = logits_batch(batch_size, blocks.shape[1], model.config.vocab_size)
    total_loss, correct, count = 0.0, 0, 0
    for start in range(0, len(blocks), batch_size):
        x = torch.from_numpy(blocks[start:start + batch_size]).to(device)
        logits = model(input_ids=x).logits[:, :-1].float()  # [batch, pos-1, vocab]
        target = x[:, 1:]
        total_loss += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum").item()
        correct += (logits.argmax(-1) == target).sum().item()
        count += target.numel()
    return {"loss": total_loss / count, "accuracy": correct / count, "tokens": count}


def log_eval_memory(name: str, model: torch.nn.Module, batch_size: int, block: int, mem_mb: int | None) -> None:
    """Log the evaluation's estimated peak; warn when it passes the job's mem_mb."""
    mb = eval_memory_mb(model, batch_size, block)
    log.info("%s: estimated peak %.0f MB (weights %.0f, logits %.0f: %d blocks x %d tokens x %d vocabulary x %d copies); "
             "the job class has %s", name, mb["total"], mb["weights"], mb["logits"], mb["blocks"], block, model.config.vocab_size,
             LOGITS_COPIES, f"{mem_mb:,} MB" if mem_mb else "no mem_mb")
    if mem_mb and mb["total"] > mem_mb:
        log.warning("%s: the estimated peak (%.0f MB) exceeds the job class's mem_mb (%s MB): raise resources.gpu_eval.mem_mb "
                    "or lower lm.eval_batch_size", name, mb["total"], f"{mem_mb:,}")


@dataclass(frozen=True)
class ValidationSet:
    """What a model is evaluated on: {corpus: validation token file}, cut into blocks of `block_size` tokens
    (the lineage's context), the first `max_tokens` of each file (None: all)."""

    files: dict[str, str | Path]
    block_size: int
    max_tokens: int | None


def evaluate_model(model_dir: str | Path, validation: ValidationSet, out_json: str | Path, batch_size: int,
                   resources: Resources) -> dict[str, Any]:
    """Evaluate the model in `model_dir` on each corpus of `validation` and write eval.json."""
    from featureflow.lm.native import load_for_inference

    torch.set_num_threads(resources.threads)
    model = load_for_inference(model_dir).to(pick_device(resources.device))
    block_size = validation.block_size
    check_model_context(model.config, block_size, Path(model_dir).name)
    log_eval_memory(Path(model_dir).name, model, batch_size, block_size, resources.mem_mb)
    results = {}
    for corpus, path in validation.files.items():
        results[corpus] = next_token_metrics(model, load_blocks(path, block_size, validation.max_tokens), batch_size)
        log.info("%s on %s: loss %.4f, accuracy %.4f", Path(model_dir).name, corpus, results[corpus]["loss"], results[corpus]["accuracy"])
    Path(out_json).write_text(json.dumps(results, indent=2) + "\n")
    return results
