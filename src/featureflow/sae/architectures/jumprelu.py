"""`jumprelu` (Rajamanoharan et al. 2024, "Jumping ahead: improving reconstruction fidelity with JumpReLU
sparse autoencoders"): a learned threshold per latent, an L0 penalty, both trained through the
straight-through estimator with a rectangle kernel of width `bandwidth` (featureflow.sae.sparsity).

In training (scaled activations x, dataset mean mu)::

    pre   = (x - mu - b_dec) @ W_enc + b_enc
    f     = JumpReLU_theta(pre) = pre * H(pre - theta)     (eq. 11 for the gradient to theta)
    loss  = mean((x - x_hat)^2) + l0_coefficient * mean_batch(sum_f H(pre - theta))   (eq. 12)

theta starts at `init_threshold` and is kept >= 0 after every step (as SAELens 6 does); the decoder rows
keep unit norm (the L0 penalty does not depend on them). Saved as SAELens 6's `jumprelu`: the tensor
`threshold` [d_sae] beside the weights, encode ReLU(pre) * (pre > threshold).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from featureflow.sae.architectures.base import Architecture
from featureflow.sae.sparsity import jump_relu, step, threshold_relu

if TYPE_CHECKING:
    from featureflow.sae.model import SparseAutoencoder


@dataclass(frozen=True)
class JumpReLUConfig:
    """The keys of `sae` only `jumprelu` has."""

    l0_coefficient: float  # lambda of the L0 penalty (on our MSE, a mean over elements)
    bandwidth: float  # epsilon of the rectangle kernel
    init_threshold: float  # theta of every latent at step 0


class JumpReLU(Architecture):
    """JumpReLU features, L0 penalty (`sae.l0_coefficient`, `sae.bandwidth`, `sae.init_threshold`)."""

    name = "jumprelu"
    config_class = JumpReLUConfig
    coefficients = ("l0",)
    logged_terms = ("mse", "l0")
    extra_tensors = ("threshold",)
    step_copies = 7  # pre, f, the step, the kernels of both estimators, their gradients

    def encode(self, weights: dict[str, torch.Tensor], x: torch.Tensor, cfg: Mapping[str, Any]) -> torch.Tensor:
        return threshold_relu((x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"], weights["threshold"])

    def init_state(self, sae: SparseAutoencoder, config: JumpReLUConfig) -> None:
        sae.threshold = torch.nn.Parameter(torch.full((sae.d_sae,), float(config.init_threshold), device=sae.W_enc.device))

    def saved_tensors(self, sae: SparseAutoencoder) -> dict[str, torch.Tensor]:
        return {"threshold": sae.threshold.detach().clone()}

    def coefficient_values(self, step: int, steps: int, config: JumpReLUConfig) -> dict[str, float]:
        return {"l0": config.l0_coefficient}

    def loss_terms(self, sae: SparseAutoencoder, x: torch.Tensor, coefficients: dict[str, Any],
                   config: JumpReLUConfig | None = None) -> dict[str, torch.Tensor]:
        pre = sae.pre_activations(x)
        f = jump_relu(pre, sae.threshold, config.bandwidth)
        mse = (x - sae.decode(f)).pow(2).mean()
        l0 = step(pre, sae.threshold, config.bandwidth).sum(dim=1).mean()  # its value: the features' L0 (theta >= 0)
        return {"loss": mse + coefficients["l0"] * l0, "mse": mse, "l0": l0, "f": f}

    def after_step(self, sae: SparseAutoencoder, terms: dict[str, torch.Tensor], config: JumpReLUConfig) -> None:
        sae.threshold.clamp_(min=0.0)


JUMPRELU = JumpReLU()
