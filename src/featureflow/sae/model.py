"""The SAE's parameters while it trains (paper Appendix B, after Bricken et al. 2023), and its SAELens export.

The architecture (featureflow.sae.architectures: encode, the loss, cfg.json's own keys) is separate;
the parameters here are the ones the architectures share: W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in]
with rows of unit norm, b_dec, and the activations' fixed mean and scale.

Output folder (SAELens on-disk layout)::

    results/sae/{model}/
        cfg.json                  SAELens config (the architecture, hook and model names)
        sae_weights.safetensors   W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in]
        featureflow_sae.json      training settings, activation scale and mean, how they were folded in
        train_log.csv             step, tokens, mse, l1, l0, dead fraction, lr, l1 coefficient

The saved weights act on RAW hook_post activations: the activation scale c and the mean mu are folded
into them (W_enc' = c W_enc, b_enc' = b_enc - mu @ W_enc, W_dec' = W_dec / c, b_dec' = b_dec / c), so
SAELens' encode of the architecture (standard: ReLU((x - b_dec') @ W_enc' + b_enc')) gives exactly our features f.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featureflow.paths import SAE_CFG, SAE_EXTRA, SAE_WEIGHTS


class SparseAutoencoder(nn.Module):
    """An SAE's parameters; `mean` and `scale` are fixed buffers set from the training activations. `encode` is the
    ReLU encoder (the standard architecture's, also used to pick inputs when resampling dead features)."""

    def __init__(self, d_in: int, d_sae: int, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        w_dec = torch.randn(d_sae, d_in, generator=gen)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)                    # [d_sae, d_in]
        self.W_enc = nn.Parameter(w_dec.T.clone())          # [d_in, d_sae], tied at init
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("mean", torch.zeros(d_in))
        self.register_buffer("scale", torch.ones(()))

    @property
    def d_in(self) -> int:
        return self.W_enc.shape[0]

    @property
    def d_sae(self) -> int:
        return self.W_enc.shape[1]

    def centred(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input x - mean - b_dec of already-scaled activations x [..., d_in]."""
        return x - self.mean - self.b_dec

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's pre-activations [..., d_sae] of already-scaled activations x [..., d_in]."""
        return self.centred(x) @ self.W_enc + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU feature activations f [..., d_sae] of already-scaled activations x [..., d_in]."""
        return torch.relu(self.pre_activations(x))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encode(x)
        return self.decode(f), f

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def remove_parallel_grad(self) -> None:
        """Drop the gradient component along each decoder row (Bricken et al.), so that the
        unit-norm projection after the step does not fight the optimiser."""
        if self.W_dec.grad is not None:
            w = self.W_dec
            self.W_dec.grad -= (self.W_dec.grad * w).sum(dim=1, keepdim=True) * w


def folded_weights(sae: SparseAutoencoder) -> dict[str, torch.Tensor]:
    """Weights that compute the same features on RAW activations (scale and mean folded in)."""
    c = sae.scale.detach()
    with torch.no_grad():
        return {
            "W_enc": (sae.W_enc * c).contiguous(),
            "b_enc": (sae.b_enc - sae.mean @ sae.W_enc).contiguous(),
            "W_dec": (sae.W_dec / c).contiguous(),
            "b_dec": (sae.b_dec / c).contiguous(),
        }


def saelens_cfg(sae: SparseAutoencoder, model_name: str, hook_name: str, context_size: int, dataset_path: str,
                arch_keys: dict[str, Any] | None = None) -> dict[str, Any]:
    """SAELens' cfg.json of an SAE; `arch_keys`: {"architecture": its name, and the keys only it has} (None: standard)."""
    return {
        **(arch_keys or {"architecture": "standard"}),
        "d_in": sae.d_in,
        "d_sae": sae.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",  # the scale is folded into the weights
        "reshape_activations": "none",
        "metadata": {
            "model_name": model_name,
            "hook_name": hook_name,
            "hook_head_index": None,
            "context_size": context_size,
            "prepend_bos": False,
            "dataset_path": dataset_path,
        },
    }


def save_sae(sae: SparseAutoencoder, out_dir: str | Path, cfg: dict[str, Any], extra: dict[str, Any],
             tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Save `sae` in SAELens' layout: its folded weights and the architecture's own `tensors` (e.g. a threshold)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(folded_weights(sae) | {k: v.contiguous() for k, v in (tensors or {}).items()}, str(out / SAE_WEIGHTS))
    (out / SAE_CFG).write_text(json.dumps(cfg, indent=2) + "\n")
    (out / SAE_EXTRA).write_text(json.dumps(extra, indent=2) + "\n")
