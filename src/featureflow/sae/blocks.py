"""Uniform blocks of tokens drawn from token files, seeded: what SAEs train on and what the common
sample of the lineage is made of. numpy only: a job that only draws blocks does not import torch."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np


class BlockSource:
    """Uniformly sampled blocks of `context_size` tokens from several token files, seeded.

    Each corpus contributes in proportion to its size (the combined data, paper section 3.2).
    """

    def __init__(self, token_files: list[str | Path], context_size: int, seed: int, name: str):
        self.arrays = [np.load(f, mmap_mode="r") for f in token_files]
        self.context = context_size
        self.starts = np.array([a.size - context_size for a in self.arrays])
        if (self.starts <= 0).any():
            raise ValueError(f"a token file has fewer than {context_size} tokens: {token_files}")
        self.weights = self.starts / self.starts.sum()
        self.key = [seed, zlib.crc32(name.encode())]

    def draw(self, n_blocks: int, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Blocks of chunk `chunk` (a pure function of seed, name and chunk) and where they come from:
        (blocks [n_blocks, context], file index [n_blocks], start offset in that file [n_blocks])."""
        rng = np.random.default_rng([*self.key, chunk])
        which = rng.choice(len(self.arrays), size=n_blocks, p=self.weights)
        starts = np.empty(n_blocks, dtype=np.int64)
        out = np.empty((n_blocks, self.context), dtype=np.int64)
        for i, w in enumerate(which):
            starts[i] = s = rng.integers(0, self.starts[w])
            out[i] = self.arrays[w][s:s + self.context]
        return out, which, starts

    def blocks(self, n_blocks: int, chunk: int) -> np.ndarray:
        """Blocks of chunk `chunk`: [n_blocks, context]."""
        return self.draw(n_blocks, chunk)[0]
