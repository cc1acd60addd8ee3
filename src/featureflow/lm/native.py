"""A Mistral forward pass in plain torch, for the jobs that read, fine-tune or merge a model.

Importing transformers' model classes takes seconds per process (it pulls in torch._dynamo and
torch.distributed.tensor), more than most evaluation jobs spend computing. This module runs the
same forward as ``transformers``' MistralForCausalLM (SDPA attention, no padding mask, float32) and
the same loss (``labels=``: next-token cross-entropy, the last position ignored), op for op in the
same order, so its logits, losses and gradients are bit-identical to the Hugging Face model's
(tests/test_native.py compares them at several shapes, and a few fine-tuning steps). Its module
tree, parameter order and state-dict keys are the Hugging Face ones, so hooks
(featureflow.sae.hooks), ``load_state_dict`` and optimizers work unchanged, and `save_native`
writes the folder that ``save_pretrained`` would (same safetensors bytes; the config files of the
folder the model came from, which ``save_pretrained`` rewrites unchanged).

Only folders whose config.json this module fully understands load natively (``native_config``);
anything else (other families, sliding windows, scaled RoPE, tied embeddings) goes to transformers.
A model trained from scratch is still built by transformers (its initialisation is transformers').
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from featureflow.paths import GENERATION_CONFIG, MODEL_CONFIG, MODEL_WEIGHTS


@dataclass
class CausalLMOutput:
    """What the callers read of a forward pass (transformers' output has the same attributes)."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


def native_config(model_dir: str | Path) -> SimpleNamespace | None:
    """The folder's config as attributes when this module can run it bit-identically to transformers, else None."""
    folder = Path(model_dir)
    if not (folder / MODEL_WEIGHTS).exists() or not (folder / MODEL_CONFIG).exists():
        return None  # sharded or non-safetensors weights: transformers knows how to read them
    raw: dict[str, Any] = json.loads((folder / MODEL_CONFIG).read_text())
    rope = raw.get("rope_parameters") or {"rope_type": "default", "rope_theta": raw.get("rope_theta")}
    hidden, heads = raw.get("hidden_size"), raw.get("num_attention_heads")
    supported = (
        raw.get("model_type") == "mistral"
        and all(isinstance(raw.get(k), int) for k in ("hidden_size", "num_attention_heads", "num_hidden_layers",
                                                       "intermediate_size", "vocab_size"))
        and isinstance(raw.get("rms_norm_eps"), float)
        and raw.get("hidden_act") == "silu"
        and raw.get("sliding_window") is None
        and not raw.get("tie_word_embeddings", False)
        and raw.get("rope_scaling") is None
        and rope.get("rope_type", "default") == "default" and rope.get("rope_theta") is not None
        and raw.get("head_dim") in (None, hidden // heads)
        and "quantization_config" not in raw
    )
    if not supported:
        return None
    return SimpleNamespace(**{**raw, "rope_theta": float(rope["rope_theta"]), "head_dim": hidden // heads,
                              "num_key_value_heads": raw.get("num_key_value_heads") or heads,
                              "name_or_path": str(model_dir)})


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.variance_epsilon = eps

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        dtype = hidden.dtype
        hidden = hidden.to(torch.float32)
        variance = hidden.pow(2).mean(-1, keepdim=True)
        hidden = hidden * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden.to(dtype)


class Rotary(nn.Module):
    """RoPE's cos and sin per position (default RoPE: no scaling)."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim)),
                             persistent=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = positions[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype=x.dtype), emb.sin().to(dtype=x.dtype)


class _Linear(nn.Linear):
    """A bias-free linear layer left uninitialised: its weight is loaded from the folder."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__(d_in, d_out, bias=False)

    def reset_parameters(self) -> None:
        pass


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: SimpleNamespace):
        super().__init__()
        d, hd, heads, kv = cfg.hidden_size, cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim, self.groups, self.scaling = hd, heads // kv, hd ** -0.5
        self.q_proj = _Linear(d, heads * hd)
        self.k_proj = _Linear(d, kv * hd)
        self.v_proj = _Linear(d, kv * hd)
        self.o_proj = _Linear(heads * hd, d)

    def forward(self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        shape = (*hidden.shape[:-1], -1, self.head_dim)
        q = self.q_proj(hidden).view(shape).transpose(1, 2)  # [batch, heads, pos, head_dim]
        k = self.k_proj(hidden).view(shape).transpose(1, 2)
        v = self.v_proj(hidden).view(shape).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q, k = (q * cos) + (_rotate_half(q) * sin), (k * cos) + (_rotate_half(k) * sin)
        n_pos = q.shape[2]
        extra = {"enable_gqa": True} if self.groups > 1 else {}
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, scale=self.scaling,
                                             is_causal=n_pos > 1, **extra)
        return self.o_proj(out.transpose(1, 2).reshape(*hidden.shape[:-1], -1))


class MLP(nn.Module):
    def __init__(self, cfg: SimpleNamespace):
        super().__init__()
        self.gate_proj = _Linear(cfg.hidden_size, cfg.intermediate_size)
        self.up_proj = _Linear(cfg.hidden_size, cfg.intermediate_size)
        self.down_proj = _Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: SimpleNamespace):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.input_layernorm(hidden), cos, sin)
        return hidden + self.mlp(self.post_attention_layernorm(hidden))


class Decoder(nn.Module):
    def __init__(self, cfg: SimpleNamespace):
        super().__init__()
        # the pad token's row gets no gradient, as in transformers (its weights are loaded, never zeroed here)
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=getattr(cfg, "pad_token_id", None),
                                         _weight=torch.empty(cfg.vocab_size, cfg.hidden_size))
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary_emb = Rotary(cfg.head_dim, cfg.rope_theta)


class NativeMistral(nn.Module):
    """MistralForCausalLM's forward: ``model(input_ids=ids).logits`` is [batch, pos, vocab]; with
    ``labels=ids`` also ``.loss``, the mean next-token cross-entropy."""

    def __init__(self, cfg: SimpleNamespace):
        super().__init__()
        self.config = cfg
        self.model = Decoder(cfg)
        self.lm_head = _Linear(cfg.hidden_size, cfg.vocab_size)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> CausalLMOutput:
        hidden = self.model.embed_tokens(input_ids)
        positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
        cos, sin = self.model.rotary_emb(hidden, positions)
        for block in self.model.layers:
            hidden = block(hidden, cos, sin)
        logits = self.lm_head(self.model.norm(hidden))
        return CausalLMOutput(logits, None if labels is None else _next_token_loss(logits, labels))


def _next_token_loss(logits: torch.Tensor, labels: torch.Tensor, ignore: int = -100) -> torch.Tensor:
    """transformers' ForCausalLMLoss: labels shifted left by padding one ignored label at the end, mean over the rest."""
    shifted = F.pad(labels, (0, 1), value=ignore)[..., 1:].contiguous()
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), shifted.view(-1).to(logits.device),
                           ignore_index=ignore, reduction="mean")


def load_native(model_dir: str | Path, cfg: SimpleNamespace) -> NativeMistral:
    """The folder's weights in a NativeMistral (float32, eval mode); every weight must be present."""
    from safetensors.torch import load_file

    model = NativeMistral(cfg)  # uninitialised (not on the meta device: that imports torch's meta kernels, seconds)
    weights = {k: v.float() for k, v in load_file(str(Path(model_dir) / MODEL_WEIGHTS)).items()}
    model.load_state_dict(weights, strict=True, assign=True)
    return model.eval()


def load_for_training(model_dir: str | Path) -> nn.Module:
    """The folder's causal LM to fine-tune or merge and save again: natively when `native_config`
    accepts it and the folder has the generation config that ``save_pretrained`` would write (so
    that `save_native` can copy it), else through transformers. Eval mode, as ``from_pretrained``."""
    if (Path(model_dir) / GENERATION_CONFIG).exists():
        return load_for_inference(model_dir)
    from featureflow.lm.model import load_model

    return load_model(model_dir)


def save_native(model: NativeMistral, out_dir: str | Path) -> None:
    """The weights as ``save_pretrained`` writes them (one safetensors file, same bytes) and the
    config files of the folder the model was loaded from."""
    import shutil

    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / MODEL_WEIGHTS), metadata={"format": "pt"})
    for name in (MODEL_CONFIG, GENERATION_CONFIG):
        shutil.copyfile(Path(model.config.name_or_path) / name, out / name)


def load_for_inference(model_dir: str | Path) -> nn.Module:
    """The folder's causal LM in eval mode: natively when `native_config` accepts it (no transformers
    import), else through transformers. Both give the same logits; a job that fine-tunes or merges
    the model and saves it again takes `load_for_training`."""
    cfg = native_config(model_dir)
    if cfg is None:
        from featureflow.lm.model import load_model

        return load_model(model_dir).eval()
    return load_native(model_dir, cfg)
