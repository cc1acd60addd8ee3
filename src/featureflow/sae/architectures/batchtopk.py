"""`batchtopk` (Bussmann et al. 2024, "BatchTopK sparse autoencoders") and `matryoshka_batchtopk`
(Bussmann et al. 2025, "Learning multi-level features with Matryoshka sparse autoencoders").

BatchTopK trains as TopK (featureflow.sae.architectures.topk) but keeps the k x batch largest ReLU'd
pre-activations of the whole batch, so L0 varies per token and averages k. Inference cannot see a
batch: the paper estimates one global threshold from training, the average over batches of the
smallest activation kept, and encodes with JumpReLU at that threshold. Here (as in SAELens 6) the
estimate is an exponential moving average over training steps (rate THRESHOLD_LR, started at the first
batch's value); the SAE is saved as SAELens' `jumprelu` with `threshold` [d_sae] that value everywhere.

Matryoshka BatchTopK adds nested dictionaries: the first m_1 < m_2 < ... < d_sae latents
(`sae.matryoshka_fractions` of d_sae) must each reconstruct x alone; the loss sums the prefixes'
MSEs (eq. 2 of the 2025 paper) plus AuxK on the whole dictionary. Saved the same way (SAELens saves its
`matryoshka_batchtopk` as `jumprelu` too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import torch

from featureflow.sae.architectures.topk import TopK
from featureflow.sae.sparsity import batch_topk_relu, min_positive, threshold_relu

if TYPE_CHECKING:
    from featureflow.sae.model import SparseAutoencoder

THRESHOLD_LR = 0.01  # SAELens 6's topk_threshold_lr: the moving average forgets at this rate per step


class BatchTopK(TopK):
    """BatchTopK features with AuxK (`sae.k`, `sae.aux_k`, `sae.aux_coefficient`), saved as JumpReLU."""

    name = "batchtopk"
    saved_as = "jumprelu"
    logged_terms = ("mse", "aux", "l0", "threshold")
    extra_tensors = ("threshold",)

    def select(self, config: Any) -> Any:
        return partial(batch_topk_relu, k=config.k)

    def encode(self, weights: dict[str, torch.Tensor], x: torch.Tensor, cfg: Mapping[str, Any]) -> torch.Tensor:
        return threshold_relu((x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"], weights["threshold"])

    def init_state(self, sae: SparseAutoencoder, config: Any) -> None:
        sae.register_buffer("topk_threshold", torch.tensor(-1.0, device=sae.W_enc.device))  # < 0: no estimate yet

    def saved_tensors(self, sae: SparseAutoencoder) -> dict[str, torch.Tensor]:
        return {"threshold": torch.full((sae.d_sae,), float(sae.topk_threshold.clamp_min(0.0)))}

    def loss_terms(self, sae: SparseAutoencoder, x: torch.Tensor, coefficients: dict[str, Any],
                   config: Any = None) -> dict[str, torch.Tensor]:
        return {**super().loss_terms(sae, x, coefficients, config), "threshold": sae.topk_threshold}

    def after_step(self, sae: SparseAutoencoder, terms: dict[str, torch.Tensor], config: Any) -> None:
        """The threshold's moving average takes this batch's smallest kept activation (none kept: unchanged)."""
        low = min_positive(terms["f"].detach().float())
        now = sae.topk_threshold
        moved = torch.where(now < 0, low, (1 - THRESHOLD_LR) * now + THRESHOLD_LR * low)
        sae.topk_threshold.copy_(torch.where(torch.isfinite(low), moved, now))

    def cfg_keys(self, settings: Any) -> dict[str, Any]:
        return {}  # SAELens' jumprelu has no keys of its own


@dataclass(frozen=True)
class MatryoshkaConfig:
    """The keys of `sae` `matryoshka_batchtopk` has."""

    k: int
    aux_k: int | None
    aux_coefficient: float
    matryoshka_fractions: tuple[float, ...]  # nested prefix sizes as shares of d_sae, increasing, the last 1


def prefix_widths(fractions: tuple[float, ...], d_sae: int) -> list[int]:
    """The nested dictionaries' sizes: each fraction of d_sae rounded, at least 1, the last d_sae."""
    return [max(1, round(f * d_sae)) for f in fractions[:-1]] + [d_sae]


class MatryoshkaBatchTopK(BatchTopK):
    """BatchTopK with nested prefix losses (`sae.matryoshka_fractions`)."""

    name = "matryoshka_batchtopk"
    config_class = MatryoshkaConfig
    sparse_cpu_step = False  # one reconstruction per prefix: the dense step
    step_copies = 6

    def loss_terms(self, sae: SparseAutoencoder, x: torch.Tensor, coefficients: dict[str, Any],
                   config: Any = None) -> dict[str, torch.Tensor]:
        f = self.select(config)(sae.pre_activations(x))
        partial_sum, start, loss = sae.b_dec.expand_as(x), 0, 0.0
        for end in prefix_widths(config.matryoshka_fractions, sae.d_sae):
            partial_sum = partial_sum + f[:, start:end] @ sae.W_dec[start:end]
            loss = loss + (x - partial_sum).pow(2).mean()
            start = end
        mse = (x - partial_sum).pow(2).mean()
        return {"loss": loss, "mse": mse, "l0": (f > 0).float().sum(dim=1).mean(), "f": f, "x_hat": partial_sum,
                "threshold": sae.topk_threshold}


BATCHTOPK = BatchTopK()
MATRYOSHKA_BATCHTOPK = MatryoshkaBatchTopK()
