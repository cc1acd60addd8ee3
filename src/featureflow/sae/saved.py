"""An SAE as saved in results/sae/{model}/: its architecture (cfg.json) and weights on raw activations.

Every reader of SAE weights (evaluation, feature activations, the merge path, matching, feature
statistics) loads a `SavedSAE`, so that encoding follows the architecture the SAE was saved with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from featureflow.paths import SAE_CFG, SAE_WEIGHTS
from featureflow.sae.architectures import Architecture, get_architecture


@dataclass(frozen=True)
class SavedSAE:
    """Saved weights (W_enc, b_enc, W_dec, b_dec and the architecture's own tensors), their architecture and
    the saved cfg.json (the architecture's own keys, e.g. TopK's `k`)."""

    architecture: Architecture
    weights: dict[str, torch.Tensor]
    cfg: Mapping[str, Any] = field(default_factory=dict)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations [..., d_sae] of raw activations [..., d_in]."""
        return self.architecture.encode(self.weights, x, self.cfg)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """The reconstruction [..., d_in] of feature activations [..., d_sae]."""
        return self.architecture.decode(self.weights, f)

    def to(self, *args: Any, **kwargs: Any) -> SavedSAE:
        """The same SAE with every tensor moved or cast (`torch.Tensor.to`'s arguments)."""
        return SavedSAE(self.architecture, {k: v.to(*args, **kwargs) for k, v in self.weights.items()}, self.cfg)

    @property
    def W_dec(self) -> torch.Tensor:  # noqa: N802 (the paper's name)
        return self.weights["W_dec"]


def load_sae_weights(sae_dir: str | Path) -> dict[str, torch.Tensor]:
    """The saved (raw-activation) tensors of the SAE in `sae_dir`."""
    from safetensors.torch import load_file

    return load_file(str(Path(sae_dir) / SAE_WEIGHTS))


def load_sae(sae_dir: str | Path) -> SavedSAE:
    """The SAE saved in `sae_dir`, with the architecture its cfg.json names (files older than the key: standard)."""
    cfg = json.loads((Path(sae_dir) / SAE_CFG).read_text())
    return SavedSAE(get_architecture(cfg.get("architecture") or "standard"), load_sae_weights(sae_dir), cfg)
