"""The language model: a Mistral-like decoder (the paper uses one layer) and its on-disk form.

A model folder is a Hugging Face ``save_pretrained`` directory with the tokenizer files beside
the weights, so ``AutoModelForCausalLM.from_pretrained(dir)`` and TransformerLens'
``TransformerBridge.boot_transformers(dir)`` both load it::

    results/lm/{model}/
        config.json, generation_config.json, model.safetensors
        tokenizer.json, tokenizer_config.json, tokenizer_meta.json

This module holds transformers' side: a model from scratch (transformers' initialisation) and
loading any folder. Fine-tunes and merges of Mistral folders run on featureflow.lm.native, and
featureflow.lm.folder.save_model writes either kind to the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, MistralConfig, MistralForCausalLM

from featureflow.settings import Architecture


def mistral_config(arch: Architecture, vocab_size: int, eot_id: int) -> MistralConfig:
    """MistralConfig for the `lm.architecture` block (SiLU-gated MLP, RMSNorm, RoPE, no sliding window)."""
    return MistralConfig(
        vocab_size=vocab_size,
        hidden_size=arch.d_model,
        intermediate_size=arch.d_mlp,
        num_hidden_layers=arch.n_layers,
        num_attention_heads=arch.n_heads,
        num_key_value_heads=arch.n_kv_heads or arch.n_heads,
        max_position_embeddings=arch.block_size,
        rope_theta=arch.rope_theta,
        sliding_window=None,
        tie_word_embeddings=False,
        bos_token_id=eot_id,
        eos_token_id=eot_id,
        pad_token_id=eot_id,
    )


def build_model(arch: Architecture, vocab_size: int, eot_id: int, seed: int) -> MistralForCausalLM:
    """A freshly initialised model; the same seed gives the same weights."""
    torch.manual_seed(seed)
    return MistralForCausalLM(mistral_config(arch, vocab_size, eot_id))


def load_model(model_dir: str | Path) -> MistralForCausalLM:
    return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
