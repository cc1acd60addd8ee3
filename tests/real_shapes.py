"""Checkpoints shaped like the ones users bring, one per supported model family, built here with random
weights: several layers, grouped-query attention where the family has it, tied embeddings where its
small models tie them, long position tables and vocabularies in the tens of thousands. Only the width
is small (d_model 48), so a forward pass stays cheap on a CPU.

    family     like                  layers  heads/kv  tied  positions  vocabulary
    llama      SmolLM-135M           4       6/2       yes   8192       49152
    qwen2      Qwen2-0.5B            4       6/2       yes   32768      32768
    mistral    Mistral-7B            4       6/2       no    32768      32000
    gpt2       GPT-2 small           4       6/6       yes   1024       50257
    gpt_neox   Pythia-70M            4       6/6       no    2048       50304

The lineage's tokenizer is a small BPE saved beside each model: its ids are the first rows of each
model's vocabulary (the rest are rows no text reaches, as in checkpoints padded to a round vocabulary).
"""

from __future__ import annotations

from typing import Any

D_MODEL, D_MLP, N_LAYERS, HEADS = 48, 128, 4, 6
HOOK = f"blocks.{N_LAYERS // 2}.mlp.hook_post"  # a middle layer: later blocks must not run for activations


def family_config(family: str) -> Any:
    """The transformers config of `family`'s real-shaped checkpoint (table in the module docstring)."""
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig, MistralConfig, Qwen2Config

    common = {"bos_token_id": 0, "eos_token_id": 0}
    if family == "llama":
        return LlamaConfig(vocab_size=49152, hidden_size=D_MODEL, intermediate_size=D_MLP, num_hidden_layers=N_LAYERS,
                           num_attention_heads=HEADS, num_key_value_heads=2, max_position_embeddings=8192,
                           tie_word_embeddings=True, rope_theta=10000.0, **common)
    if family == "qwen2":
        return Qwen2Config(vocab_size=32768, hidden_size=D_MODEL, intermediate_size=D_MLP, num_hidden_layers=N_LAYERS,
                           num_attention_heads=HEADS, num_key_value_heads=2, max_position_embeddings=32768,
                           tie_word_embeddings=True, use_sliding_window=False, **common)
    if family == "mistral":
        return MistralConfig(vocab_size=32000, hidden_size=D_MODEL, intermediate_size=D_MLP, num_hidden_layers=N_LAYERS,
                             num_attention_heads=HEADS, num_key_value_heads=2, max_position_embeddings=32768,
                             sliding_window=None, tie_word_embeddings=False, **common)
    if family == "gpt2":
        return GPT2Config(vocab_size=50257, n_embd=D_MODEL, n_inner=None, n_layer=N_LAYERS, n_head=HEADS, n_positions=1024,
                          **common)
    if family == "gpt_neox":
        return GPTNeoXConfig(vocab_size=50304, hidden_size=D_MODEL, intermediate_size=D_MLP, num_hidden_layers=N_LAYERS,
                             num_attention_heads=HEADS, max_position_embeddings=2048, rotary_pct=0.25,
                             tie_word_embeddings=False, **common)
    raise ValueError(family)


FAMILIES = ("llama", "qwen2", "mistral", "gpt2", "gpt_neox")


def family_model(family: str, seed: int):
    """A seeded random-weight causal LM of `family`'s real shape (biases random too, so none hides)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(family_config(family)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(std=0.02)
    return model
