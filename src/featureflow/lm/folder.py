"""A model folder's files without transformers: its shape (config.json), its tokenizer's
fingerprint, and writing the folder. Jobs that only check models against each other (the merge
sweep) or fine-tune and merge Mistral folders natively stay clear of the 8 s that importing
transformers' model classes takes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from featureflow.config import ConfigError
from featureflow.paths import MODEL_CONFIG, PRETRAINED_META, TOKENIZER_FILES, TOKENIZER_JSON
from featureflow.settings import Architecture

# Config fields that must agree between a parent and the model built from it.
SHAPE_FIELDS = {"d_model": "hidden_size", "d_mlp": "intermediate_size", "n_heads": "num_attention_heads",
                "n_layers": "num_hidden_layers", "vocab_size": "vocab_size"}


def tokenizer_digest(folder: str | Path) -> str:
    """Fingerprint of a tokenizer (its tokenizer.json) to detect parent/child mismatches."""
    return hashlib.sha256((Path(folder) / TOKENIZER_JSON).read_bytes()).hexdigest()[:16]


def shape_of(config: dict[str, Any]) -> dict[str, Any]:
    return {ours: config.get(hf) for ours, hf in SHAPE_FIELDS.items()}


def check_parent(parent_dir: str | Path, parent: str, child: str, arch: Architecture, vocab_size: int,
                 tokenizer_dir: str | Path) -> None:
    """Refuse to fine-tune `child` from a parent folder of another shape or tokenizer (one-line error).

    A pretrained parent (its folder has pretrained.json) brings its own architecture: only its
    tokenizer must be the lineage's."""
    if (Path(parent_dir) / PRETRAINED_META).exists():  # no tokenizer file: the lineage's is built from the config
        if (Path(parent_dir) / TOKENIZER_JSON).exists() and tokenizer_digest(parent_dir) != tokenizer_digest(tokenizer_dir):
            raise ConfigError(f"cannot fine-tune '{child}' from '{parent}': tokenizer of {parent_dir} differs from {tokenizer_dir}")
        return
    parent_cfg = json.loads((Path(parent_dir) / MODEL_CONFIG).read_text())
    want = {**{k: getattr(arch, k) for k in ("d_model", "d_mlp", "n_heads", "n_layers")}, "vocab_size": vocab_size}
    have = shape_of(parent_cfg)
    diff = {k: (have[k], want[k]) for k in want if have[k] != want[k]}
    if parent_cfg.get("model_type") != "mistral" or diff:
        shown = ", ".join(f"{k} {a} vs {b}" for k, (a, b) in diff.items()) or f"model_type {parent_cfg.get('model_type')}"
        raise ConfigError(f"cannot fine-tune '{child}' from '{parent}' ({parent_dir}): architecture differs ({shown}, parent vs config)")
    if tokenizer_digest(parent_dir) != tokenizer_digest(tokenizer_dir):
        raise ConfigError(f"cannot fine-tune '{child}' from '{parent}': tokenizer of {parent_dir} differs from {tokenizer_dir}")


def save_model(model: Any, tokenizer_dir: str | Path, out_dir: str | Path) -> None:
    """Write weights (safetensors) and config, and copy the tokenizer files beside them: a transformers
    model through ``save_pretrained``, a native one (featureflow.lm.native) to the same bytes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(out, safe_serialization=True)
    else:
        from featureflow.lm.native import save_native

        save_native(model, out)
    for name in TOKENIZER_FILES:
        if (Path(tokenizer_dir) / name).exists():
            shutil.copy(Path(tokenizer_dir) / name, out / name)
