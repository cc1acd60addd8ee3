"""Sparse autoencoder (paper Appendix B, after Bricken et al. 2023): model, training, SAELens export.

Forward pass, with x the (optionally scaled) hook_post activation and mu the dataset mean::

    x_bar = x - mu - b_dec                 (eq. 1)
    f     = ReLU(x_bar @ W_enc + b_enc)    (eq. 2)   W_enc [d_in, d_sae]
    x_hat = f @ W_dec + b_dec              (eq. 3)   W_dec [d_sae, d_in], rows of unit norm
    loss  = mean((x - x_hat)^2) + l1 * mean_batch(sum_f |f|)   (eq. 4: MSE over elements, L1 summed)

Output folder (SAELens on-disk layout)::

    results/sae/{model}/
        cfg.json                  SAELens config (architecture "standard", hook and model names)
        sae_weights.safetensors   W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in]
        featureflow_sae.json      training settings, activation scale and mean, how they were folded in
        train_log.csv             step, tokens, mse, l1, l0, dead fraction, lr, l1 coefficient

The saved weights act on RAW hook_post activations: the activation scale c and the mean mu are folded
into them (W_enc' = c W_enc, b_enc' = b_enc - mu @ W_enc, W_dec' = W_dec / c, b_dec' = b_dec / c), so
SAELens' standard encode ReLU((x - b_dec') @ W_enc' + b_enc') gives exactly our features f.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featureflow.paths import SAE_CFG, SAE_EXTRA, SAE_WEIGHTS


class SparseAutoencoder(nn.Module):
    """The paper's SAE; `mean` and `scale` are fixed buffers set from the training activations."""

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

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations f [..., d_sae] of already-scaled activations x [..., d_in]."""
        return torch.relu((x - self.mean - self.b_dec) @ self.W_enc + self.b_enc)

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


def loss_terms(sae: SparseAutoencoder, x: torch.Tensor, l1: float) -> dict[str, torch.Tensor]:
    """Eq. 4 of the paper on a batch [batch, d_in] of scaled activations.

    Training on a CPU in float32 takes the sparse step of `featureflow.sae.sparse` (same
    gradients, about 2.2x faster at L0 ~30 of 2048); CUDA, autocast and compiled graphs (which
    fuse the dense products) take the dense one.
    """
    if (x.device.type == "cpu" and x.dtype == torch.float32 and torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling()):
        from featureflow.sae.sparse import sae_step_forward

        x_hat, f, l1_rows = sae_step_forward(x - sae.mean - sae.b_dec, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)
        l1_term = l1_rows.mean()
    else:
        x_hat, f = sae(x)
        l1_term = f.abs().sum(dim=1).mean()
    mse = (x - x_hat).pow(2).mean()
    return {"loss": mse + l1 * l1_term, "mse": mse, "l1": l1_term, "l0": (f > 0).float().sum(dim=1).mean(), "f": f}


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


def saelens_cfg(sae: SparseAutoencoder, model_name: str, hook_name: str, context_size: int, dataset_path: str) -> dict[str, Any]:
    return {
        "architecture": "standard",
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


def save_sae(sae: SparseAutoencoder, out_dir: str | Path, cfg: dict[str, Any], extra: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(folded_weights(sae), str(out / SAE_WEIGHTS))
    (out / SAE_CFG).write_text(json.dumps(cfg, indent=2) + "\n")
    (out / SAE_EXTRA).write_text(json.dumps(extra, indent=2) + "\n")


def load_sae_weights(sae_dir: str | Path) -> dict[str, torch.Tensor]:
    """The saved (raw-activation) weights: W_enc, b_enc, W_dec, b_dec."""
    from safetensors.torch import load_file

    return load_file(str(Path(sae_dir) / SAE_WEIGHTS))


def encode_raw(weights: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """SAELens' standard encoding of raw activations with saved weights: [..., d_in] -> [..., d_sae]."""
    return torch.relu((x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"])


def decode_raw(weights: dict[str, torch.Tensor], f: torch.Tensor) -> torch.Tensor:
    return f @ weights["W_dec"] + weights["b_dec"]
