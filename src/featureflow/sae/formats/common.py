"""What the SAE file formats share: the folder being read, what a reader returns, and the checks and
folds that turn another library's encode into one of featureflow's architectures exactly."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from featureflow.config import ConfigError
from featureflow.sae.hooks import HOOK_PATTERN

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A folder to read as an SAE, how errors name it, and the site of this run it must fit."""

    folder: Path  # the folder holding the SAE's files
    at: str  # how errors name it: the config key, the source and its path
    hook_name: str  # this run's activation site (`sae.hook`)
    d_in: int  # the model's width there
    path: str | None = None  # the subfolder `path` inside the source (Gemma Scope keeps the layer in it)


@dataclass
class ReadSAE:
    """What a format's reader returns: weights in featureflow's layout on raw activations (float64:
    W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in] and the architecture's own
    tensors) under a registered architecture whose encode is the source library's own, exactly."""

    architecture: str  # featureflow.sae.architectures name (saved form: standard, topk or jumprelu)
    weights: dict[str, torch.Tensor]
    source_architecture: str  # what the source calls it (SAELens 'gated', dictionary_learning 'BatchTopKSAE', ...)
    cfg_keys: dict[str, Any] = field(default_factory=dict)  # the architecture's cfg.json keys (TopK's k)
    folded: list[str] = field(default_factory=list)  # what was folded into the weights, in words
    details: dict[str, Any] = field(default_factory=dict)  # the format's own record (original settings, dtypes, flags)
    settings: dict[str, Any] = field(default_factory=dict)  # context_size, dataset_path, tokens where recorded


def one_line(text: object) -> str:
    """`text` with its whitespace runs (newlines included) as single spaces."""
    return " ".join(str(text).split())


def read_json(path: Path, at: str, hint: str) -> dict[str, Any]:
    """The JSON object in `path`; one line naming it when it is missing (with `hint`: what the folder
    should hold), not JSON, or not an object."""
    if not path.is_file():
        raise ConfigError(f"{at}: no {path.name} in '{path.parent}' ({hint})")
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{at}: {path} is not valid JSON ({one_line(err)})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{at}: {path} holds {type(cfg).__name__}, not an object of settings")
    return cfg


def read_safetensors(path: Path, at: str) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; one line when it is missing or unreadable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise ConfigError(f"{at}: no {path.name} in '{path.parent}'")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ConfigError(f"{at}: {path} cannot be read ({one_line(err)})") from None


def dtypes(tensors: dict[str, Any]) -> dict[str, str]:
    """Each tensor's dtype as written in the source ("float32", "bfloat16", ...)."""
    return {k: str(v.dtype).removeprefix("torch.") for k, v in tensors.items()}


def check_tensors(tensors: dict[str, torch.Tensor], at: str, layout: dict[str, tuple[str, ...]], d_in: int,
                  what: str, optional: tuple[str, ...] = ()) -> int:
    """Refuse missing, unknown, misshapen, non-float or non-finite tensors; returns d_sae.

    `layout`: each tensor's dimensions by name ("d_in", "d_sae"), d_sae read from the first tensor
    that has it; `optional`: names that may be there too, with shape [d_sae]; `what`: the kind of SAE,
    for the message on a tensor it does not have ("a standard SAE").
    """
    missing = [k for k in layout if k not in tensors]
    if missing:
        raise ConfigError(f"{at}: no tensor {', '.join(missing)} (found: {', '.join(sorted(tensors)) or 'none'})")
    unknown = sorted(set(tensors) - set(layout) - set(optional))
    if unknown:
        raise ConfigError(f"{at}: tensor {', '.join(unknown)} is not part of {what} (another architecture?)")
    first = next(k for k, dims in layout.items() if "d_sae" in dims)
    if tensors[first].ndim != len(layout[first]):
        raise ConfigError(f"{at}: {first} has shape {list(tensors[first].shape)}, not [{', '.join(layout[first])}]")
    d_sae = int(tensors[first].shape[layout[first].index("d_sae")])
    sizes = {"d_in": d_in, "d_sae": d_sae}
    for key in [*layout, *(k for k in optional if k in tensors)]:
        shape = [sizes[d] for d in layout.get(key, ("d_sae",))]
        value = tensors[key]
        if list(value.shape) != shape:
            raise ConfigError(f"{at}: {key} has shape {list(value.shape)}, expected {shape} "
                              f"(d_in {d_in} of the model at the hook, d_sae {d_sae} from {first})")
        if not value.is_floating_point() or not torch.isfinite(value).all():
            raise ConfigError(f"{at}: {key} holds {'non-finite values' if value.is_floating_point() else value.dtype}")
    return d_sae


def check_width(at: str, key: str, value: Any, d_in: int, hook_name: str) -> None:
    """Refuse a recorded input width `value` (config key `key`) other than the model's at the hook."""
    if value is not None and value != d_in:
        raise ConfigError(f"{at}: {key} {value}, but the model's activations at '{hook_name}' have width {d_in}")


def check_hook(at: str, label: str, recorded: str, hook_name: str) -> None:
    """Refuse a recorded hook (TransformerLens name) other than this run's `sae.hook`."""
    if recorded != hook_name:
        raise ConfigError(f"{at}: {label} '{recorded}', but this run reads '{hook_name}' (config key 'sae.hook')")


def hook_layer(hook_name: str) -> int | None:
    """The layer of a hook name (blocks.L....), None for a name of another shape."""
    match = HOOK_PATTERN.match(hook_name)
    return int(match.group(1)) if match else None


def check_layer(at: str, label: str, layer: int, hook_name: str) -> None:
    """Refuse a recorded layer other than the layer of this run's `sae.hook`."""
    ours = hook_layer(hook_name)
    if ours is not None and layer != ours:
        raise ConfigError(f"{at}: {label} {layer}, but this run reads '{hook_name}' (layer {ours}; config key 'sae.hook')")


def fold_b_dec(weights: dict[str, torch.Tensor], folded: list[str]) -> None:
    """For a source that encodes x itself (no b_dec subtracted): our encode subtracts b_dec, so b_enc
    takes b_dec @ W_enc: x @ W + b = (x - b_dec) @ W + (b + b_dec @ W)."""
    weights["b_enc"] = weights["b_enc"] + weights["b_dec"] @ weights["W_enc"]
    folded.append("b_dec @ W_enc into b_enc (the source encodes x without subtracting b_dec)")


def gated_as_jumprelu(w_enc: torch.Tensor, b_gate: torch.Tensor, r_mag: torch.Tensor,
                      b_mag: torch.Tensor) -> dict[str, torch.Tensor]:
    """A gated SAE's encoder (Rajamanoharan et al. 2024) as a JumpReLU's, exactly.

    Gated: f = [s + b_gate > 0] * ReLU(e * s + b_mag) with s = x @ W_enc, e = exp(r_mag) > 0. With
    pre = e * s + b_mag the gate is pre > b_mag - e * b_gate, so f = ReLU(pre) * [pre > threshold]:
    W_enc -> W_enc * e, b_enc = b_mag, threshold = b_mag - e * b_gate.
    """
    scale = r_mag.exp()
    return {"W_enc": w_enc * scale, "b_enc": b_mag, "threshold": b_mag - scale * b_gate}


def scalar_threshold(at: str, key: str, value: torch.Tensor, d_sae: int) -> torch.Tensor:
    """A BatchTopK's global inference threshold (a 0-d tensor) as JumpReLU's per-latent one [d_sae];
    refused while it was never estimated (negative: the library's encode would be a dense ReLU)."""
    if value.numel() != 1 or not value.is_floating_point() or not torch.isfinite(value).all():
        raise ConfigError(f"{at}: {key} holds {list(value.shape)} {value.dtype}, not one finite threshold")
    threshold = float(value)
    if threshold < 0:
        raise ConfigError(f"{at}: {key} {threshold:g} was never estimated (training stopped before the "
                          "threshold's first update); its inference encode would be a dense ReLU, not BatchTopK")
    return torch.full((d_sae,), threshold, dtype=torch.float64)


def as_float64(tensors: dict[str, torch.Tensor], names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The named tensors as float64 copies (folding happens in float64; the saved SAE is float32)."""
    return {k: tensors[k].detach().to(torch.float64) for k in names}
