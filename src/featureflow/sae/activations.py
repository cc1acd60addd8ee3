"""Activations for SAE training: uniform 24-token blocks from a model's lineage data.

The activation site is a TransformerLens hook name (``blocks.{L}.mlp.hook_post`` by default),
read from the Hugging Face model by featureflow.sae.hooks, which stops the forward pass at the
hook (tests/test_hooks.py checks it against TransformerLens).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from featureflow.sae.blocks import BlockSource
from featureflow.sae.hooks import hook_activations

# The name this function had when only mlp.hook_post was supported (flow/feature_acts.py uses it).
mlp_hook_post = hook_activations


def activation_chunks(model: torch.nn.Module, source: BlockSource, hook_name: str, blocks_per_chunk: int,
                      first_chunk: int = 0, forward_batch: int | None = None) -> Iterator[torch.Tensor]:
    """Endless shuffled chunks of activations [blocks_per_chunk * context, width], chunk by chunk.

    A chunk stays on the model's device and is shuffled there: on a GPU the activations never
    travel to the host. The blocks and the shuffle are a pure function of (seed, model, chunk) on a
    given device. `forward_batch` blocks go through the LM at once (default: 256 on a CPU, 4096 on
    a GPU, where small batches of 24-token blocks leave it idle).
    """
    chunk = first_chunk
    device = next(model.parameters()).device
    forward_batch = forward_batch or (4096 if device.type == "cuda" else 256)
    while True:
        yield _shuffled_chunk(model, source, hook_name, blocks_per_chunk, chunk, forward_batch)
        chunk += 1


def _shuffled_chunk(model: torch.nn.Module, source: BlockSource, hook_name: str, n_blocks: int, chunk: int,
                    forward_batch: int) -> torch.Tensor:
    """Chunk `chunk`: row j holds token order[j] of its blocks (order: the chunk's seeded permutation).

    Each forward batch goes straight to its shuffled rows, so the chunk is held once (not a
    concatenation plus a shuffled copy): the same tensor as ``torch.cat(batches)[order]``.
    """
    device = next(model.parameters()).device
    ids = torch.from_numpy(source.blocks(n_blocks, chunk)).to(device)
    n_tokens = n_blocks * source.context
    order = np.random.default_rng([*source.key, chunk, 1]).permutation(n_tokens)
    where = np.empty_like(order)
    where[order] = np.arange(n_tokens)  # token i of the chunk goes to row where[i]
    where = torch.from_numpy(where).to(device)
    out = None
    for i in range(0, n_blocks, forward_batch):
        acts = hook_activations(model, ids[i:i + forward_batch], hook_name).flatten(0, 1)  # [tokens, width]
        if out is None:
            out = torch.empty(n_tokens, acts.shape[1], dtype=acts.dtype, device=device)
        start = i * source.context
        out[where[start:start + len(acts)]] = acts
    return out
