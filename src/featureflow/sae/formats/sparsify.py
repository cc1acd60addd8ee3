"""EleutherAI sparsify folders: ``cfg.json`` + ``sae.safetensors`` (read from eai-sparsify 1.3.3,
``sparsify/sparse_coder.py``, ``fused_encoder.py``, ``config.py``).

A checkpoint holds one such folder per hookpoint, named after the module whose output it was trained
on (``layers.0``, ``layers.0.mlp``, ``h.3``: names inside the model's base module); `path` names one.
Tensors: ``encoder.weight`` [num_latents, d_in], ``encoder.bias`` [num_latents], ``W_dec``
[num_latents, d_in], ``b_dec`` [d_in]. Its encode (``SparseCoder.encode``, activation ``topk``)::

    pre = ReLU((x - b_dec) @ encoder.weight.T + encoder.bias);  f = the k largest of pre, per token

which is featureflow's ``topk`` (TopK then ReLU keeps the same values) with W_enc = encoder.weight.T;
decode ``f @ W_dec + b_dec``. ``W_dec`` rows have unit norm only with ``normalize_decoder`` (kept as
they are either way: the encode does not use them). ``multi_topk`` changes only the training loss.

Refused: ``transcode`` (predicts another site's activations), ``skip_connection`` (``W_skip``: a dense
linear term no SAE here has), ``activation: groupmax`` (one latent per group of latents), ``signed``
(older versions: signed activations); and a folder name that is a hookpoint of a site featureflow
does not read, or of another layer or site than `sae.hook`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from featureflow.config import ConfigError
from featureflow.paths import SAE_CFG
from featureflow.sae.formats.common import (
    ReadSAE,
    Source,
    as_float64,
    check_hook,
    check_tensors,
    check_width,
    dtypes,
    read_json,
    read_safetensors,
)
from featureflow.sae.formats.saelens import sparsify_like
from featureflow.sae.hooks import HOOK_PATTERN

log = logging.getLogger(__name__)

NAME = "sparsify"
WEIGHTS = "sae.safetensors"
FILES = (SAE_CFG, WEIGHTS)
LAYOUT = {"encoder.weight": ("d_sae", "d_in"), "encoder.bias": ("d_sae",), "W_dec": ("d_sae", "d_in"), "b_dec": ("d_in",)}
# sparsify's hookpoints are module names inside the model's base module (sparsify.utils.get_layer_list):
# the blocks' list (Llama, Mistral, Qwen2, GPT-NeoX: `layers`; GPT-2: `h`), a block's MLP, its output projection
_BLOCKS = r"(?:layers|h)"
_OUT_PROJ = r"(?:down_proj|c_proj|dense_4h_to_h)"
# the output of GPT-2's and GPT-NeoX's `mlp.act` is their output projection's input (Llama's `act_fn` is not: gated MLPs multiply it)
_SITES = ((re.compile(rf"^{_BLOCKS}\.(\d+)$"), "hook_resid_post"),
          (re.compile(rf"^{_BLOCKS}\.(\d+)\.mlp(?:\.{_OUT_PROJ})?$"), "hook_mlp_out"),
          (re.compile(rf"^{_BLOCKS}\.(\d+)\.mlp\.act$"), "mlp.hook_post"))
_LOOKS_LIKE_HOOKPOINT = re.compile(r"^(?:[A-Za-z_]\w*\.)+\d+(?:\.[A-Za-z_]\w*)*$|^(?:embed_tokens|wte|embed_in)$")


def detect(folder: Path) -> int:
    """2: the weights file is there; 1: only a sparsify cfg.json; 0: not a sparsify folder."""
    if (folder / WEIGHTS).is_file():
        return 2
    try:
        return int((folder / SAE_CFG).is_file() and sparsify_like(read_json(folder / SAE_CFG, "", "")))
    except ConfigError:
        return 0


def hookpoint_site(name: str) -> str | None:
    """The TransformerLens hook of a sparsify hookpoint (its folder name; a TransformerLens name stands
    for itself), None when it names no site featureflow reads."""
    if HOOK_PATTERN.match(name):
        return name
    for pattern, site in _SITES:
        if match := pattern.match(name):
            return f"blocks.{match.group(1)}.{site}"
    return None


def _check_hookpoint(src: Source, at: str) -> str | None:
    """The hookpoint the folder is named after, checked against `sae.hook` (None: the name is no hookpoint)."""
    name = src.folder.resolve().name
    if not (_LOOKS_LIKE_HOOKPOINT.match(name) or HOOK_PATTERN.match(name)):
        log.warning("%s: folder name '%s' is not a sparsify hookpoint; the site is not checked (assumed: %s)",
                    at, name, src.hook_name)
        return None
    site = hookpoint_site(name)
    if site is None:
        raise ConfigError(f"{at}: hookpoint '{name}' (the folder's name) is none of the sites featureflow reads "
                          "('layers.N' or 'h.N': blocks.N.hook_resid_post; 'layers.N.mlp': blocks.N.hook_mlp_out; "
                          "'h.N.mlp.act' of GPT-2 and GPT-NeoX: blocks.N.mlp.hook_post)")
    check_hook(at, f"hookpoint '{name}' (the folder's name) is", site, src.hook_name)
    return name


def _check_cfg(cfg: dict[str, Any], at: str, src: Source) -> int:
    """Refuse what is no TopK SAE on the input; returns k."""
    if cfg.get("transcode"):
        raise ConfigError(f"{at}: transcode true: a transcoder predicts another site's activations, not an SAE of this one")
    if cfg.get("skip_connection"):
        raise ConfigError(f"{at}: skip_connection true: W_skip adds a dense linear term that no featureflow SAE has")
    if cfg.get("signed"):
        raise ConfigError(f"{at}: signed true: signed activations; featureflow imports ReLU'd TopK SAEs only")
    activation = cfg.get("activation", "topk")
    if activation != "topk":
        raise ConfigError(f"{at}: activation '{activation}'; featureflow imports sparsify's 'topk' only "
                          "('groupmax' keeps one latent per group, which no featureflow architecture does)")
    k = cfg.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"{at}: k {k!r} is not a positive integer")
    check_width(at, "d_in", cfg.get("d_in"), src.d_in, src.hook_name)
    return k


def read(src: Source) -> ReadSAE:
    """The sparsify SAE in `src.folder`, checked against the run's hook (the folder's name) and width."""
    cfg = read_json(src.folder / SAE_CFG, src.at, f"a sparsify SAE folder holds {SAE_CFG} and {WEIGHTS}; a checkpoint "
                    "holds one such folder per hookpoint: set `path` to one")
    at_cfg, at_weights = f"{src.at}: {SAE_CFG}", f"{src.at}: {WEIGHTS}"
    k = _check_cfg(cfg, at_cfg, src)
    hookpoint = _check_hookpoint(src, src.at)
    tensors = read_safetensors(src.folder / WEIGHTS, src.at)
    if "W_skip" in tensors:
        raise ConfigError(f"{at_weights}: tensor W_skip: a skip connection adds a dense linear term that no featureflow SAE has")
    d_sae = check_tensors(tensors, at_weights, LAYOUT, src.d_in, "a sparsify TopK SAE")
    expected = cfg.get("num_latents") or (cfg.get("expansion_factor") or 0) * src.d_in
    if expected and expected != d_sae:
        raise ConfigError(f"{at_weights}: {d_sae} latents, but {SAE_CFG} says {expected} (num_latents or d_in x expansion_factor)")
    if k > d_sae:
        raise ConfigError(f"{at_cfg}: k {k} exceeds the {d_sae} latents")
    w = as_float64(tensors, tuple(LAYOUT))
    weights = {"W_enc": w["encoder.weight"].T, "b_enc": w["encoder.bias"], "W_dec": w["W_dec"], "b_dec": w["b_dec"]}
    return ReadSAE("topk", weights, "topk", {"k": k, "rescale_acts_by_decoder_norm": False}, [],  # it subtracts b_dec as we do
                   {"original_cfg": cfg, "original_dtypes": dtypes(tensors), "hookpoint": hookpoint,
                    "tensors": {"W_enc": "encoder.weight transposed", "b_enc": "encoder.bias", "W_dec": "W_dec", "b_dec": "b_dec"}})
