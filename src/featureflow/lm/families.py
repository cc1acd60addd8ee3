"""Model families: where each Hugging Face causal-LM family keeps its parts, and an LM's shape.

FAMILIES is the one table of what featureflow knows about a family (the config's ``model_type``): the
blocks, the MLP's output projection, the final norm, the MLP's width. A new family is one more entry.
The SAE stage's hooks (featureflow.sae.hooks) resolve activation sites from it; the memory estimates
read `lm_shape`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from featureflow.config import ConfigError


@dataclass(frozen=True)
class Family:
    """Where a model family keeps its parts (dotted attribute paths) and how wide its MLP is."""

    blocks: str  # from the causal LM to its list of blocks
    out_proj: str  # from a block to the MLP's output projection
    final_norm: str  # from the causal LM to the norm before the unembedding
    d_mlp: Callable[[Any], int]  # the MLP's width from the config
    gated: bool  # a gated MLP (gate, up and down matrices) rather than two matrices
    conv1d: bool = False  # out_proj is GPT-2's Conv1D, whose weight is [d_mlp, d_model] (nn.Linear's is [d_model, d_mlp])


_LLAMA_LIKE = Family("model.layers", "mlp.down_proj", "model.norm", lambda c: c.intermediate_size, gated=True)
FAMILIES: dict[str, Family] = {
    "mistral": _LLAMA_LIKE,
    "llama": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "gpt2": Family("transformer.h", "mlp.c_proj", "transformer.ln_f", lambda c: c.n_inner or 4 * c.n_embd, gated=False,
                   conv1d=True),
    "gpt_neox": Family("gpt_neox.layers", "mlp.dense_4h_to_h", "gpt_neox.final_layer_norm", lambda c: c.intermediate_size,
                       gated=False),
}


@dataclass(frozen=True)
class LMShape:
    """The LM's sizes that decide the SAE jobs' memory."""

    d_model: int
    d_mlp: int
    n_layers: int
    n_heads: int
    vocab: int
    gated: bool = True  # a gated MLP (three matrices) as in Mistral
    tied: bool = False  # the unembedding is the embedding

    @property
    def mlp_matrices(self) -> int:
        return 3 if self.gated else 2

    @property
    def params(self) -> int:
        """Weights of the embedding and unembedding, attention, the MLP and the norms (biases left out)."""
        d = self.d_model
        embeddings = (1 if self.tied else 2) * self.vocab * d
        return embeddings + self.n_layers * (4 * d * d + self.mlp_matrices * d * self.d_mlp + 2 * d) + d


def config_name(config: Any) -> str:
    """The name a config was loaded under (its model type when it has none), for messages."""
    return getattr(config, "name_or_path", "") or config.model_type


def family_of(config: Any, model_name: str, hook_name: str | None = None) -> Family:
    """The family entry of a config's model_type; a one-line ConfigError naming the model (and hook) otherwise."""
    family = FAMILIES.get(config.model_type)
    if family is None:
        what = f"has no hook {hook_name!r}" if hook_name else "is not supported"
        raise ConfigError(f"model {model_name!r} {what} (model_type {config.model_type!r}; supported: {', '.join(FAMILIES)})")
    return family


def lm_shape(config: Any) -> LMShape:
    """The LMShape of a transformers config of a supported family."""
    family = family_of(config, config_name(config))
    return LMShape(config.hidden_size, family.d_mlp(config), config.num_hidden_layers, config.num_attention_heads,
                   config.vocab_size, family.gated, bool(getattr(config, "tie_word_embeddings", False)))
