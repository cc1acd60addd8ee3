"""Pretrained models of the lineage: a checkpoint copied into results/lm/{model}/ as it is used.

The copy is a Hugging Face folder like a trained model's (one float32 ``model.safetensors``,
``config.json``, the tokenizer files), so every later job reads it the same way, offline::

    results/lm/{model}/
        config.json, model.safetensors, tokenizer files (the checkpoint's own)
        pretrained.json    where it came from: source, revision, commit, model type, parameters
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from featureflow.config import ConfigError
from featureflow.hub import snapshot
from featureflow.lineage import Pretrained
from featureflow.lm.families import lm_shape
from featureflow.paths import MODEL_CONFIG, PRETRAINED_META

log = logging.getLogger(__name__)

# What a model folder needs: configs, weights (safetensors, else PyTorch bins) and the tokenizer.
MODEL_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
BIN_PATTERNS = ["*.bin"]


def fetch_model(name: str, source: Pretrained, out_dir: str | Path, cache_dir: str | None) -> dict[str, Any]:
    """Copy pretrained model `name` from `source` (hub id or folder) into `out_dir` as float32 safetensors
    with its tokenizer; return (and write) its provenance."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    what = f"config key 'models.{name}.pretrained'"
    folder, commit = snapshot(source, what, cache_dir, MODEL_PATTERNS)
    if commit is not None and not any(folder.glob("*.safetensors")):
        folder, commit = snapshot(source, what, cache_dir, MODEL_PATTERNS + BIN_PATTERNS)
    if not (folder / MODEL_CONFIG).exists():
        raise ConfigError(f"{what}: {folder} has no {MODEL_CONFIG}; not a Hugging Face model folder")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"{what}: {folder} does not load as a causal LM "
                          f"({type(err).__name__}: {(str(err).splitlines() or [''])[0]})") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError, TypeError):
        tokenizer = None  # the tokenizer stage builds the `tokenizer` block's instead
        log.warning("%s ships no tokenizer; the lineage's comes from the config's `tokenizer` block", folder)
    if tokenizer is not None and tokenizer.eos_token is None:
        raise ConfigError(f"{what}: the tokenizer of {folder} has no end-of-text (eos) token to separate documents")
    shape = lm_shape(model.config)  # also refuses a model family the hooks do not know, before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True, max_shard_size="1000GB")  # one file: the DAG names it
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    meta = {"model": name, "source": source.source, "revision": source.revision, "commit": commit,
            "on_hub": commit is not None, "model_type": model.config.model_type,
            "architecture": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters()),
            "arch": {"d_model": shape.d_model, "d_mlp": shape.d_mlp, "n_layers": shape.n_layers, "n_heads": shape.n_heads},
            "tokenizer": tokenizer is not None, "vocab_size": model.config.vocab_size}
    (out / PRETRAINED_META).write_text(json.dumps(meta, indent=2) + "\n")
    log.info("pretrained %s: %s %s (%d parameters) from %s", name, meta["model_type"], meta["architecture"],
             meta["parameters"], folder)
    return meta
