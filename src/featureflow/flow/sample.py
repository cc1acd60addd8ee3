"""The common sample of the lineage (results/flow/sample.npz): blocks of tokens drawn once from the
combined training data of every model, which all models' feature activations are computed on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from featureflow.flow.arrays import sample_digest
from featureflow.sae import BlockSource


def draw_common_sample(token_files: dict[str, str | Path], n_tokens: int, context_size: int, seed: int) -> dict[str, Any]:
    """`n_tokens` (rounded down to whole blocks) sampled uniformly from the union of the corpora."""
    n_blocks = n_tokens // context_size
    if n_blocks < 1:
        raise ValueError(f"acts.tokens {n_tokens} is smaller than one block of {context_size} tokens")
    names = list(token_files)
    source = BlockSource([token_files[c] for c in names], context_size, seed, "common_sample")
    blocks, which, starts = source.draw(n_blocks, 0)
    return {"blocks": blocks.astype(np.uint32), "corpus": which.astype(np.int16), "start": starts,
            "corpora": np.array(names), "digest": np.array(sample_digest(blocks))}
