"""`standard`: the paper's SAE (Appendix B, after Bricken et al. 2023), a ReLU and an L1 penalty.

With x the scaled activation and mu the dataset mean, in training (featureflow.sae.model holds the
parameters)::

    f     = ReLU((x - mu - b_dec) @ W_enc + b_enc)          (eq. 1-2)
    x_hat = f @ W_dec + b_dec                               (eq. 3)  W_dec rows of unit norm
    loss  = mean((x - x_hat)^2) + l1 * mean_batch(sum_f |f|)  (eq. 4: MSE over elements, L1 summed)

and on saved weights (scale and mean folded in) SAELens' standard encode ReLU((x - b_dec) @ W_enc + b_enc).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from featureflow.sae import sparse
from featureflow.sae.architectures.base import Architecture
from featureflow.sae.sparse import sparse_step_applies

if TYPE_CHECKING:
    from featureflow.sae.model import SparseAutoencoder


@dataclass(frozen=True)
class StandardConfig:
    """The keys of `sae` only `standard` has."""

    l1_coefficient: float  # lambda of eq. 4
    l1_warmup_fraction: float  # share of the steps over which lambda rises linearly from 0 (0: constant, the paper)


class Standard(Architecture):
    """ReLU features, L1 penalty with an optional linear warm-up (`sae.l1_coefficient`, `sae.l1_warmup_fraction`)."""

    name = "standard"
    config_class = StandardConfig
    coefficients = ("l1",)
    logged_terms = ("mse", "l1", "l0")
    sparse_cpu_step = True  # f >= 0 and the L1 term's gradient is per row: featureflow.sae.sparse

    def encode(self, weights: dict[str, torch.Tensor], x: torch.Tensor, cfg: Mapping[str, Any]) -> torch.Tensor:
        return torch.relu((x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"])

    def coefficient_values(self, step: int, steps: int, config: StandardConfig) -> dict[str, float]:
        warm = config.l1_warmup_fraction * steps
        return {"l1": config.l1_coefficient * (min(1.0, (step + 1) / warm) if warm > 0 else 1.0)}

    def loss_terms(self, sae: SparseAutoencoder, x: torch.Tensor, coefficients: dict[str, Any],
                   config: StandardConfig | None = None) -> dict[str, torch.Tensor]:
        """Eq. 4 on a batch [batch, d_in] of scaled activations.

        Training on a CPU in float32 takes the sparse step of `featureflow.sae.sparse` (same
        gradients, about 2.2x faster at L0 ~30 of 2048); CUDA, autocast and compiled graphs (which
        fuse the dense products) take the dense one.
        """
        if sparse_step_applies(x):
            x_hat, f, l1_rows = sparse.sae_step_forward(sae.centred(x), sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)
            l1_term = l1_rows.mean()
        else:
            x_hat, f = sae(x)
            l1_term = f.abs().sum(dim=1).mean()
        mse = (x - x_hat).pow(2).mean()
        return {"loss": mse + coefficients["l1"] * l1_term, "mse": mse, "l1": l1_term, "l0": (f > 0).float().sum(dim=1).mean(),
                "f": f}


STANDARD = Standard()
