"""The lineage's context length: the block length of every job that cuts token arrays into blocks.

Fine-tuning, next-token evaluation, the merge sweep and SAE evaluation all read `lm.context_size`,
resolved once when the plan is built:

- given: that value, refused when it is above what a model supports (`lm.architecture.block_size`
  for models trained from scratch, ``max_position_embeddings`` for pretrained checkpoints whose
  config.json can be read without the network: a local folder, or a hub snapshot in the cache);
- null (the default): ``lm.architecture.block_size`` when the lineage trains a model from scratch,
  else DEFAULT_PRETRAINED_CONTEXT; in both cases lowered to the fewest positions of any readable
  pretrained checkpoint.

A checkpoint that could not be read at plan time (a hub id not yet downloaded) is checked by each
job that loads it (`check_model_context`), with one line naming the model and both numbers.

The SAE and activation context (`sae.context_size`, `acts.context_size`: the paper's 24 tokens) are
their own: they sample short windows and never exceed a model's positions in practice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from featureflow.config import ConfigError
from featureflow.lineage import Lineage, Pretrained
from featureflow.paths import MODEL_CONFIG

# 1024 tokens: GPT-2's whole context, a quarter of Llama-2's; long enough to measure next-token
# loss past the first positions, short enough that one block's logits fit a laptop (1024 x 50k floats = 200 MB).
DEFAULT_PRETRAINED_CONTEXT = 1024
CONTEXT_KEY = "lm.context_size"


def max_positions(config: Mapping[str, Any] | Any) -> int | None:
    """The positions a model supports, from its config.json (a dict) or a loaded config object."""
    get = config.get if isinstance(config, Mapping) else lambda k: getattr(config, k, None)
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):  # GPT-2 names it n_positions
        value = get(key)
        if isinstance(value, int):
            return value
    return None


def hub_cache_dir(data_cache: str | None, workdir: str | Path) -> Path:
    """Where the hub snapshots of this run live: `<data_cache>/hub`, else huggingface_hub's default cache."""
    if data_cache:
        return Path(workdir) / Path(data_cache).expanduser() / "hub"
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"


def peek_config(source: Pretrained, workdir: str | Path, hub_cache: Path) -> dict[str, Any] | None:
    """A pretrained checkpoint's config.json when it can be read without the network, else None."""
    folder = source.local_folder(workdir)
    if folder is None:  # a hub id: its snapshot in the cache, laid out as huggingface_hub writes it
        repo = hub_cache / f"models--{source.source.replace('/', '--')}"
        ref = source.revision or "main"
        commit = (repo / "refs" / ref).read_text().strip() if (repo / "refs" / ref).is_file() else ref
        folder = repo / "snapshots" / commit
    path = folder / MODEL_CONFIG
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def resolve_context(configured: int | None, scratch_block: int | None, positions: Mapping[str, int]) -> int:
    """The lineage's context length (see the module docstring).

    `scratch_block`: `lm.architecture.block_size` when a model is trained from scratch, else None;
    `positions`: the max positions of each pretrained model that could be read."""
    if configured is None:
        context = scratch_block if scratch_block is not None else DEFAULT_PRETRAINED_CONTEXT
        return min([context, *positions.values()])
    if scratch_block is not None and configured > scratch_block:
        raise ConfigError(f"config key '{CONTEXT_KEY}': {configured} is above lm.architecture.block_size {scratch_block}, "
                          "the positions of the models trained from scratch; lower it or raise block_size")
    for name, limit in sorted(positions.items(), key=lambda kv: kv[1]):
        if configured > limit:
            raise ConfigError(f"config key '{CONTEXT_KEY}': {configured} is above the {limit} positions model '{name}' "
                              f"supports (max_position_embeddings); set it to {limit} or less")
    return configured


def lineage_context(cfg: dict[str, Any], lineage: Lineage, workdir: str | Path) -> int:
    """`lm.context_size` of a validated config, resolved against the lineage's models."""
    hub_cache = hub_cache_dir(cfg.get("data_cache"), workdir)
    positions = {}
    for name in lineage.pretrained:
        config = peek_config(lineage.models[name].pretrained, workdir, hub_cache)
        limit = max_positions(config) if config is not None else None
        if limit is not None:
            positions[name] = limit
    has_scratch = any(lineage.models[m].kind == "scratch" for m in lineage.order)
    scratch_block = cfg["lm"]["architecture"]["block_size"] if has_scratch else None
    return resolve_context(cfg["lm"].get("context_size"), scratch_block, positions)


def check_model_context(config: Any, context: int, model: str) -> None:
    """Refuse, in one line naming `model` and both numbers, a context longer than the model's positions."""
    limit = max_positions(config)
    if limit is not None and context > limit:
        raise ConfigError(f"model '{model}' supports {limit} positions (max_position_embeddings) but the lineage's context "
                          f"is {context} tokens; set {CONTEXT_KEY}: {limit} (or less)")
