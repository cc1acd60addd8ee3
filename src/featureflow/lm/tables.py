"""The table of every model's next-token metrics, results/lm/eval.tsv: all models x corpora from their
eval.json files, plus unigram baseline rows. Light work: no torch here, so its job starts in a second."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featureflow.data import load_blocks


def unigram_metrics(train_ids: np.ndarray, blocks: np.ndarray, vocab_size: int) -> dict[str, float]:
    """Baseline: predict every token from add-one-smoothed unigram frequencies of `train_ids`."""
    counts = np.bincount(np.asarray(train_ids, dtype=np.int64), minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    target = blocks[:, 1:].reshape(-1)
    return {"loss": float(-logp[target].mean()), "accuracy": float((target == counts.argmax()).mean()), "tokens": int(target.size)}


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
            blocks = load_blocks(validation[corpus], shape.block_size, shape.max_tokens)
            rows.append({"model": label, "corpus": corpus, **unigram_metrics(np.load(train, mmap_mode="r"), blocks, shape.vocab_size)})
    lines = ["model\tcorpus\tloss\taccuracy\ttokens"]
    lines += [f"{r['model']}\t{r['corpus']}\t{r['loss']:.4f}\t{r['accuracy']:.4f}\t{r['tokens']}" for r in rows]
    Path(out_tsv).write_text("\n".join(lines) + "\n")
    return rows
