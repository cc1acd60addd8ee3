"""Next-token accuracy and loss of a model on validation token files (the paper's merge metric).

Output: results/lm/{model}/eval.json, {corpus: {loss, accuracy, tokens}} for every corpus. The table of
all models (results/lm/eval.tsv) is featureflow.lm.tables, which needs no torch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featureflow.data import eval_blocks
from featureflow.runtime import pick_device
from featureflow.settings import Resources

log = logging.getLogger(__name__)


@torch.no_grad()
def next_token_metrics(model: torch.nn.Module, blocks: np.ndarray, batch_size: int = 64) -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy of predicting token i+1 from tokens <= i in each block."""
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct, count = 0.0, 0, 0
    for start in range(0, len(blocks), batch_size):
        x = torch.from_numpy(blocks[start:start + batch_size]).to(device)
        logits = model(input_ids=x).logits[:, :-1].float()  # [batch, pos-1, vocab]
        target = x[:, 1:]
        total_loss += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum").item()
        correct += (logits.argmax(-1) == target).sum().item()
        count += target.numel()
    return {"loss": total_loss / count, "accuracy": correct / count, "tokens": count}


def evaluate_model(model_dir: str | Path, validation: dict[str, str | Path], out_json: str | Path,
                   max_tokens: int | None, batch_size: int, resources: Resources) -> dict[str, Any]:
    """Evaluate the model in `model_dir` on each corpus' validation tokens (`max_tokens` each) and write eval.json."""
    from featureflow.lm.native import load_for_inference

    torch.set_num_threads(resources.threads)
    model = load_for_inference(model_dir).to(pick_device(resources.device))
    block = model.config.max_position_embeddings
    results = {}
    for corpus, path in validation.items():
        results[corpus] = next_token_metrics(model, eval_blocks(np.load(path, mmap_mode="r"), block, max_tokens), batch_size)
        log.info("%s on %s: loss %.4f, accuracy %.4f", Path(model_dir).name, corpus, results[corpus]["loss"], results[corpus]["accuracy"])
    Path(out_json).write_text(json.dumps(results, indent=2) + "\n")
    return results
