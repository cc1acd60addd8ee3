"""The seam every SAE architecture fills, after SAELens' own split (`sae_lens/saes/*`: per architecture
a config, encode/decode, the training loss's coefficients and an auxiliary loss).

An architecture is a stateless object; the parameters live in `featureflow.sae.model.SparseAutoencoder`
while training and, once saved, in a weights dict on RAW activations (the activation scale and mean
folded in), which `featureflow.sae.saved.SavedSAE` pairs with its architecture for every reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from featureflow.settings import from_block

if TYPE_CHECKING:
    import torch

    from featureflow.sae.model import SparseAutoencoder
    from featureflow.settings import SAESettings

# Tensors of every saved SAE: W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in].
BASE_TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec")


class Architecture:
    """One SAE architecture: how saved weights encode and decode, and how training scores a batch.

    The sparsity mechanism itself (ReLU, TopK, BatchTopK, JumpReLU) lives in featureflow.sae.sparsity,
    which knows nothing of the encoder and decoder, so that other dictionary shapes can use it too.
    """

    name: ClassVar[str]  # `sae.architecture`, spelled as SAELens spells it
    saved_as: ClassVar[str | None] = None  # cfg.json's "architecture" of the saved SAE when inference differs (None: name)
    config_class: ClassVar[type]  # a frozen dataclass of its own keys of `sae` (SAESettings.options)
    coefficients: ClassVar[tuple[str, ...]] = ()  # the loss's coefficients, logged as `<name>_coefficient`
    logged_terms: ClassVar[tuple[str, ...]] = ("mse", "l0")  # per-step terms of the training log, after `loss`
    extra_tensors: ClassVar[tuple[str, ...]] = ()  # saved tensors beyond BASE_TENSORS (e.g. a threshold)
    sparse_cpu_step: ClassVar[bool] = False  # whether featureflow.sae.sparse's CPU training step holds for it
    uses_aux_loss: ClassVar[bool] = False  # whether training calls `aux_loss` (it needs the dead-feature mask)
    step_copies: ClassVar[int] = 5  # [batch, d_sae] float tensors alive in one training step (memory estimate; dense: pre, f, mask, its gradient)

    @property
    def saved_name(self) -> str:
        """cfg.json's "architecture" of an SAE trained with this one (SAELens saves BatchTopK as JumpReLU)."""
        return self.saved_as or self.name

    def config(self, settings: SAESettings) -> Any:
        """Its own keys of the `sae` block, typed (`config_class` from `settings.options`)."""
        return from_block(self.config_class, settings.options)

    def encode(self, weights: dict[str, torch.Tensor], x: torch.Tensor, cfg: Mapping[str, Any]) -> torch.Tensor:
        """Feature activations [..., d_sae] of raw activations x [..., d_in] under saved `weights` and the
        saved cfg.json `cfg` (TopK's `k`)."""
        raise NotImplementedError

    def decode(self, weights: dict[str, torch.Tensor], f: torch.Tensor) -> torch.Tensor:
        """The reconstruction [..., d_in] of feature activations f (linear for every architecture here)."""
        return f @ weights["W_dec"] + weights["b_dec"]

    def init_state(self, sae: SparseAutoencoder, config: Any) -> None:
        """Register the architecture's own parameters or buffers on a new `sae` (e.g. JumpReLU's threshold),
        before a checkpoint is loaded into it."""

    def saved_tensors(self, sae: SparseAutoencoder) -> dict[str, torch.Tensor]:
        """The tensors of `extra_tensors` as saved (on raw activations; the pre-activations do not change
        when the scale and mean are folded in, so thresholds are saved as they are)."""
        return {}

    def coefficient_values(self, step: int, steps: int, config: Any) -> dict[str, float]:
        """Each of `coefficients` at training step `step` of `steps` (warm-ups live here), from its typed
        `config` (what `config(settings)` built once, so that no step parses settings)."""
        return {}

    def loss_terms(self, sae: SparseAutoencoder, x: torch.Tensor, coefficients: dict[str, Any],
                   config: Any = None) -> dict[str, torch.Tensor]:
        """The training loss of a batch x [batch, d_in] of scaled activations: "loss" (what is minimised),
        "f" (the features) and every name of `logged_terms` but "aux" (`aux_loss` adds it); `config` its typed keys."""
        raise NotImplementedError

    def aux_loss(self, sae: SparseAutoencoder, x: torch.Tensor, terms: dict[str, torch.Tensor],
                 dead: torch.Tensor, config: Any) -> torch.Tensor:
        """An auxiliary loss, coefficient applied, that training adds to "loss" and logs as "aux" (TopK's
        AuxK on the `dead` features [d_sae]); called only when `uses_aux_loss`."""
        raise NotImplementedError

    def after_step(self, sae: SparseAutoencoder, terms: dict[str, torch.Tensor], config: Any) -> None:
        """State updated after each optimiser step, without gradients (BatchTopK's threshold estimate)."""

    def cfg_keys(self, settings: SAESettings) -> dict[str, Any]:
        """Keys of SAELens' cfg.json that only this architecture's saved form has (e.g. TopK's `k`)."""
        return {}


def log_fields(arch: Architecture) -> tuple[str, ...]:
    """The columns of an SAE training log under `arch`: the loss as minimised, then its terms and the recipe's state."""
    return ("step", "tokens", "loss", *arch.logged_terms, "dead_fraction", "lr", *(f"{c}_coefficient" for c in arch.coefficients))
