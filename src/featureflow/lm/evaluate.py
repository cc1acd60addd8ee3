"""Next-token accuracy and loss of a model on validation token files (the paper's merge metric).

Outputs::

    results/lm/{model}/eval.json   {corpus: {loss, accuracy, tokens}} for every corpus
    results/lm/eval.tsv            all models x corpora, plus a unigram baseline per corpus
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
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


def unigram_metrics(train_ids: np.ndarray, blocks: np.ndarray, vocab_size: int) -> dict[str, float]:
    """Baseline: predict every token from add-one-smoothed unigram frequencies of `train_ids`."""
    counts = np.bincount(np.asarray(train_ids, dtype=np.int64), minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    target = blocks[:, 1:].reshape(-1)
    return {"loss": float(-logp[target].mean()), "accuracy": float((target == counts.argmax()).mean()), "tokens": int(target.size)}


def evaluate_model(model_dir: str | Path, validation: dict[str, str | Path], out_json: str | Path,
                   max_tokens: int | None, batch_size: int, resources: Resources) -> dict[str, Any]:
    """Evaluate the model in `model_dir` on each corpus' validation tokens (`max_tokens` each) and write eval.json."""
    from featureflow.lm.model import load_model  # transformers: slow to import, eval_table does not need it

    torch.set_num_threads(resources.threads)
    model = load_model(model_dir).to(pick_device(resources.device))
    block = model.config.max_position_embeddings
    results = {}
    for corpus, path in validation.items():
        results[corpus] = next_token_metrics(model, eval_blocks(np.load(path, mmap_mode="r"), block, max_tokens), batch_size)
        log.info("%s on %s: loss %.4f, accuracy %.4f", Path(model_dir).name, corpus, results[corpus]["loss"], results[corpus]["accuracy"])
    Path(out_json).write_text(json.dumps(results, indent=2) + "\n")
    return results


@dataclass(frozen=True)
class EvalShape:
    """What the unigram baseline rows are measured with: vocabulary size, validation block size and token cap."""

    vocab_size: int
    block_size: int
    max_tokens: int | None


def eval_table(eval_files: dict[str, str | Path], validation: dict[str, str | Path], baselines: dict[str, dict[str, str | Path]],
               shape: EvalShape, out_tsv: str | Path) -> list[dict[str, Any]]:
    """Gather eval.json files into one TSV, plus unigram baseline rows on the same validation blocks.

    `baselines` maps a row label to {corpus: train token file}: the unigram model of that row learns
    token frequencies from the given file (e.g. the base model's own training mixture for every
    corpus, or each corpus' own training split for an in-domain reference).
    """
    rows = []
    for model, path in eval_files.items():
        for corpus, m in json.loads(Path(path).read_text()).items():
            rows.append({"model": model, "corpus": corpus, **m})
    for label, train_files in baselines.items():
        for corpus, train in train_files.items():
            blocks = eval_blocks(np.load(validation[corpus], mmap_mode="r"), shape.block_size, shape.max_tokens)
            rows.append({"model": label, "corpus": corpus, **unigram_metrics(np.load(train, mmap_mode="r"), blocks, shape.vocab_size)})
    lines = ["model\tcorpus\tloss\taccuracy\ttokens"]
    lines += [f"{r['model']}\t{r['corpus']}\t{r['loss']:.4f}\t{r['accuracy']:.4f}\t{r['tokens']}" for r in rows]
    Path(out_tsv).write_text("\n".join(lines) + "\n")
    return rows
