"""`topk` (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"): the k largest pre-activations
per token, ReLU'd; no sparsity penalty, L0 <= k by construction; AuxK on dead latents.

In training (scaled activations x, dataset mean mu)::

    pre   = (x - mu - b_dec) @ W_enc + b_enc
    f     = TopK_k(pre), ReLU'd                          W_dec rows of unit norm
    loss  = mean((x - x_hat)^2) + aux_coefficient * AuxK  (AuxK: featureflow.sae.sparsity.auxk_loss)

Saved as SAELens 6's `topk` (cfg.json `k`, `rescale_acts_by_decoder_norm` false: the decoder rows have unit
norm while training, and the folded scale changes no selection), whose encode is
TopK_k((x - b_dec) @ W_enc + b_enc) with a ReLU on the kept values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from featureflow.sae import sparse
from featureflow.sae.architectures.base import Architecture
from featureflow.sae.sparsity import auxk_loss, topk_relu

if TYPE_CHECKING:
    from featureflow.sae.model import SparseAutoencoder
    from featureflow.settings import SAESettings


@dataclass(frozen=True)
class TopKConfig:
    """The keys of `sae` the TopK family has."""

    k: int  # latents kept per token (BatchTopK: on average over the batch)
    aux_k: int | None  # dead latents AuxK reconstructs the residual with (None: d_in // 2, Gao et al.'s heuristic)
    aux_coefficient: float  # alpha of AuxK (Gao et al.: 1/32)


class TopK(Architecture):
    """TopK features with AuxK (`sae.k`, `sae.aux_k`, `sae.aux_coefficient`)."""

    name = "topk"
    config_class = TopKConfig
    coefficients = ("aux",)
    logged_terms = ("mse", "aux", "l0")
    sparse_cpu_step = True  # exactly k non-zeros per token: featureflow.sae.sparse with a TopK selection
    uses_aux_loss = True

    def select(self, config: TopKConfig) -> Any:
        """The mechanism on (ReLU'd) pre-activations [batch, d_sae] while training."""
        return partial(topk_relu, k=config.k)

    def encode(self, weights: dict[str, torch.Tensor], x: torch.Tensor, cfg: Mapping[str, Any]) -> torch.Tensor:
        return topk_relu((x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"], int(cfg["k"]))

    def coefficient_values(self, step: int, steps: int, config: TopKConfig) -> dict[str, float]:
        return {"aux": config.aux_coefficient}

    def loss_terms(self, sae: SparseAutoencoder, x: torch.Tensor, coefficients: dict[str, Any],
                   config: TopKConfig | None = None) -> dict[str, torch.Tensor]:
        """Reconstruction MSE of a batch [batch, d_in] of scaled activations (AuxK comes from `aux_loss`).
        CPU float32 takes the sparse step (featureflow.sae.sparse), the rest the dense one."""
        select = self.select(config)
        x_bar = sae.centred(x)
        if sparse.sparse_step_applies(x):
            x_hat, f, _ = sparse.sae_step_forward(x_bar, sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, select)
        else:
            f = select(x_bar @ sae.W_enc + sae.b_enc)
            x_hat = sae.decode(f)
        mse = (x - x_hat).pow(2).mean()
        return {"loss": mse, "mse": mse, "l0": (f > 0).float().sum(dim=1).mean(), "f": f, "x_hat": x_hat}

    def aux_loss(self, sae: SparseAutoencoder, x: torch.Tensor, terms: dict[str, torch.Tensor],
                 dead: torch.Tensor, config: TopKConfig) -> torch.Tensor:
        aux_k = config.aux_k or sae.d_in // 2
        residual = (x - terms["x_hat"]).detach()
        return config.aux_coefficient * auxk_loss(sae.centred(x), residual, (sae.W_enc, sae.b_enc, sae.W_dec), dead, aux_k)

    def cfg_keys(self, settings: SAESettings) -> dict[str, Any]:
        return {"k": int(settings.options["k"]), "rescale_acts_by_decoder_norm": False}


TOPK = TopK()
