"""SAELens folders: ``cfg.json`` + ``sae_weights.safetensors`` (layouts read from sae-lens 6.54.12,
``sae_lens/saes/*.py``; older files through its ``handle_pre_6_0_config``).

Every SAELens encode starts from ``sae_in = x - b_dec * apply_b_dec_to_input`` (``process_sae_in``);
with ``apply_b_dec_to_input`` false ``b_dec @ W_enc`` is folded into ``b_enc``. Per architecture:

- ``standard``: ReLU(sae_in @ W_enc + b_enc)                          -> standard
- ``topk`` (cfg ``k``; before 6.0 ``activation_fn: topk`` with ``activation_fn_kwargs.k``): the k
  largest of pre = sae_in @ W_enc + b_enc, ReLU'd                    -> topk
  ``rescale_acts_by_decoder_norm``: pre * |W_dec row| before TopK, f / |W_dec row| before decoding;
  folded exactly (W_enc and b_enc times the row norms, W_dec rows divided by them)
- ``jumprelu``: ReLU(pre) * (pre > threshold), tensor ``threshold`` [d_sae] (SAELens saves its
  ``batchtopk`` and ``matryoshka_batchtopk`` for inference so)       -> jumprelu
- ``gated``: [sae_in @ W_enc + b_gate > 0] * ReLU(sae_in @ (W_enc * exp(r_mag)) + b_mag)
                                                                      -> jumprelu (common.gated_as_jumprelu)

An old ``finetuning_scaling_factor`` (decode of f * factor) is folded into the rows of ``W_dec``.
Refused: other architectures (abstopk, matching_pursuit, temporal, transcoders, the training forms
``batchtopk`` / ``matryoshka_batchtopk``), activation normalisation other than ``none``, reshaped
(hook_z) activations.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from featureflow.config import ConfigError
from featureflow.paths import SAE_CFG, SAE_WEIGHTS
from featureflow.sae.formats.common import (
    ReadSAE,
    Source,
    as_float64,
    check_hook,
    check_tensors,
    check_width,
    dtypes,
    fold_b_dec,
    gated_as_jumprelu,
    read_json,
    read_safetensors,
)

log = logging.getLogger(__name__)

NAME = "saelens"
FILES = (SAE_CFG, SAE_WEIGHTS)
SCALING_KEYS = ("finetuning_scaling_factor", "scaling_factor")  # older SAELens: f * factor before decoding
_BASE = {"W_enc": ("d_in", "d_sae"), "b_enc": ("d_sae",), "W_dec": ("d_sae", "d_in"), "b_dec": ("d_in",)}
LAYOUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "standard": _BASE,
    "topk": _BASE,
    "jumprelu": {**_BASE, "threshold": ("d_sae",)},
    "gated": {"W_enc": ("d_in", "d_sae"), "b_gate": ("d_sae",), "r_mag": ("d_sae",), "b_mag": ("d_sae",),
              "W_dec": ("d_sae", "d_in"), "b_dec": ("d_in",)},
}
OURS = {"standard": "standard", "topk": "topk", "jumprelu": "jumprelu", "gated": "jumprelu"}
TRAINING_FORMS = ("batchtopk", "matryoshka_batchtopk")  # SAELens saves these for inference as jumprelu


def cfg_value(cfg: dict[str, Any], key: str) -> Any:
    """A cfg key at the top level (SAELens < 6) or under `metadata` (SAELens 6: hook_name, model_name, ...)."""
    if key in cfg:
        return cfg[key]
    meta = cfg.get("metadata")
    return meta.get(key) if isinstance(meta, dict) else None


def sparsify_like(cfg: dict[str, Any]) -> bool:
    """A cfg.json that sparsify wrote (no d_sae; num_latents or expansion_factor), not SAELens."""
    return "d_sae" not in cfg and ("num_latents" in cfg or "expansion_factor" in cfg)


def detect(folder: Path) -> int:
    """2: the weights file is there; 1: only an SAELens cfg.json; 0: not an SAELens folder."""
    if (folder / SAE_WEIGHTS).is_file():
        return 2
    try:
        return int((folder / SAE_CFG).is_file() and not sparsify_like(read_json(folder / SAE_CFG, "", "")))
    except ConfigError:
        return 1


def _architecture(cfg: dict[str, Any], at: str) -> tuple[str, int | None]:
    """SAELens' architecture and TopK's k (None for the others); files older than the key are standard."""
    name = cfg.get("architecture") or "standard"
    activation = cfg.get("activation_fn_str") or cfg.get("activation_fn") or "relu"
    kwargs = cfg.get("activation_fn_kwargs") or {}
    if name == "standard" and activation == "topk":  # before SAELens 6: a standard SAE with a TopK activation
        if not isinstance(kwargs, dict) or kwargs.get("k") is None:
            raise ConfigError(f"{at}: activation_fn 'topk' without activation_fn_kwargs.k")
        name, activation = "topk", "relu"
    elif activation not in ("relu", name):
        raise ConfigError(f"{at}: activation_fn '{activation}'; featureflow imports SAEs with a ReLU only")
    if name in TRAINING_FORMS:
        raise ConfigError(f"{at}: architecture '{name}' is SAELens' training form; save the inference SAE "
                          "(SAELens writes it as 'jumprelu' with a threshold tensor) and import that")
    if name not in LAYOUTS:
        raise ConfigError(f"{at}: architecture '{name}'; featureflow imports SAELens {', '.join(map(repr, LAYOUTS))} "
                          "SAEs only (featureflow.sae.formats.saelens)")
    if name != "topk":
        return name, None
    k = cfg.get("k", kwargs.get("k") if isinstance(kwargs, dict) else None)
    if not isinstance(k, int) or isinstance(k, bool):
        raise ConfigError(f"{at}: architecture 'topk' needs an integer k, not {k!r}")
    return name, k


def _check_settings(cfg: dict[str, Any], at: str, src: Source) -> bool:
    """Refuse input normalisation, reshaping, another hook or width; returns apply_b_dec_to_input."""
    normalize = cfg.get("normalize_activations")
    if normalize not in (None, "none", False):
        raise ConfigError(f"{at}: normalize_activations '{normalize}'; SAELens normalises the input before encoding "
                          "(by a factor measured on the data, or per token), which fixed weights on raw activations "
                          "cannot reproduce: export the SAE with any constant factor folded in (normalize_activations 'none')")
    reshape = cfg.get("reshape_activations")
    if reshape not in (None, "none"):
        raise ConfigError(f"{at}: reshape_activations '{reshape}'; featureflow reads unreshaped activations only")
    hook = cfg_value(cfg, "hook_name") or cfg_value(cfg, "hook_point")
    if hook is None:
        log.warning("%s: no hook_name; assumed to be %s (sae.hook)", at, src.hook_name)
    else:
        check_hook(at, "hook_name", hook, src.hook_name)
    check_width(at, "d_in", cfg.get("d_in"), src.d_in, src.hook_name)
    apply = cfg.get("apply_b_dec_to_input")
    if apply is None:
        log.warning("%s: no apply_b_dec_to_input; SAELens' default (true) assumed", at)
        return True
    return bool(apply)


def _convert(name: str, tensors: dict[str, torch.Tensor], at: str, apply_b_dec: bool,
             rescale: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Our weights (float64) for SAELens architecture `name`, and what was folded."""
    w = as_float64(tensors, tuple(LAYOUTS[name]))
    folded: list[str] = []
    if name == "gated":
        w = {**gated_as_jumprelu(w["W_enc"], w["b_gate"], w["r_mag"], w["b_mag"]), "W_dec": w["W_dec"], "b_dec": w["b_dec"]}
        folded.append("gated encoder as JumpReLU: W_enc * exp(r_mag), b_enc = b_mag, threshold = b_mag - exp(r_mag) * b_gate")
    if rescale:
        norms = w["W_dec"].norm(dim=1)
        if not bool((norms > 0).all()):
            raise ConfigError(f"{at}: rescale_acts_by_decoder_norm with {int((norms == 0).sum())} zero W_dec rows "
                              "(SAELens would divide by zero)")
        w["W_enc"], w["b_enc"], w["W_dec"] = w["W_enc"] * norms, w["b_enc"] * norms, w["W_dec"] / norms[:, None]
        folded.append("rescale_acts_by_decoder_norm: W_enc and b_enc times the W_dec row norms, W_dec rows divided by them")
    factor = next((tensors[k].double() for k in SCALING_KEYS if k in tensors), None)
    if factor is not None and not torch.equal(factor, torch.ones_like(factor)):
        w["W_dec"] = w["W_dec"] * factor[:, None]  # decode (f * s) @ W_dec = f @ (s[:, None] * W_dec)
        folded.append("finetuning_scaling_factor into the rows of W_dec")
    if not apply_b_dec:
        fold_b_dec(w, folded)
    return w, folded


def read(src: Source) -> ReadSAE:
    """The SAELens SAE in `src.folder`, checked against the run's hook and width."""
    cfg = read_json(src.folder / SAE_CFG, src.at, f"an SAELens SAE folder holds {SAE_CFG} and {SAE_WEIGHTS}")
    at_cfg, at_weights = f"{src.at}: {SAE_CFG}", f"{src.at}: {SAE_WEIGHTS}"
    name, k = _architecture(cfg, at_cfg)
    apply_b_dec = _check_settings(cfg, at_cfg, src)
    tensors = read_safetensors(src.folder / SAE_WEIGHTS, src.at)
    d_sae = check_tensors(tensors, at_weights, LAYOUTS[name], src.d_in, f"a {name} SAE", SCALING_KEYS)
    if cfg.get("d_sae") is not None and cfg["d_sae"] != d_sae:
        raise ConfigError(f"{at_weights}: d_sae {cfg['d_sae']} in {SAE_CFG}, but the weights have {d_sae} features")
    rescale = name == "topk" and bool(cfg.get("rescale_acts_by_decoder_norm"))
    weights, folded = _convert(name, tensors, at_weights, apply_b_dec, rescale)
    flags = {"apply_b_dec_to_input": apply_b_dec, "b_dec_folded_into_b_enc": not apply_b_dec,
             "finetuning_scaling_factor_folded_into_W_dec": any("finetuning" in f for f in folded),
             "rescale_acts_by_decoder_norm_folded": rescale}
    return ReadSAE(OURS[name], weights, name, {"k": k, "rescale_acts_by_decoder_norm": False} if k is not None else {},
                   folded, {"original_cfg": cfg, "original_dtypes": dtypes(tensors), **flags},
                   {"context_size": cfg_value(cfg, "context_size"), "dataset_path": cfg_value(cfg, "dataset_path"),
                    "tokens": cfg_value(cfg, "training_tokens")})
