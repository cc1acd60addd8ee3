"""saprmarks/dictionary_learning folders: ``ae.pt`` (a state dict) + ``config.json`` (``trainer``:
``dict_class``, ``activation_dim``, ``dict_size``, ``layer``, ...; ``buffer``: ``ctx_len``), as its
``training.py`` writes them (read at commit 60ec6bf, 2025-08-20: ``dictionary.py``,
``trainers/top_k.py``, ``trainers/batch_top_k.py``, ``trainers/matryoshka_batch_top_k.py``).

The final ``ae.pt`` acts on raw activations (``normalize_activations`` training scales the biases
back before saving). Each class's default encode, and the architecture it is imported as::

    AutoEncoder             ReLU((x - bias) @ encoder.weight.T + encoder.bias)            standard
    AutoEncoderNew          ReLU(x @ encoder.weight.T + encoder.bias), decoder.bias       standard, b_dec folded
    AutoEncoderTopK         k largest of ReLU((x - b_dec) @ encoder.weight.T + encoder.bias)   topk (k from the state dict)
    BatchTopKSAE            post * (post > threshold), post = ReLU((x - b_dec) @ encoder.weight.T + encoder.bias)
                                                                                       jumprelu (the global threshold per latent)
    MatryoshkaBatchTopKSAE  the same with W_enc, b_enc (all groups active, as from_pretrained builds it)    jumprelu
    JumpReluAutoEncoder     ReLU(pre * (pre > threshold)), pre = x @ W_enc + b_enc         jumprelu, b_dec folded
    GatedAutoEncoder        [s + gate_bias > 0] * ReLU(exp(r_mag) * s + mag_bias), s = (x - decoder_bias) @ encoder.weight.T
                                                                                       jumprelu (common.gated_as_jumprelu)

``decoder.weight`` is [d_in, d_sae] (an nn.Linear from the latents), so W_dec is its transpose. The
decoder is kept as saved: ``AutoEncoder.from_pretrained`` (normalize_decoder=True) rescales each
feature by its decoder column's norm, the same active set. Refused: other classes (IdentityDict),
a training backup (``ae.pt`` holding ``ae`` and ``optimizer``), a BatchTopK threshold never
estimated, and a ``trainer.layer`` other than `sae.hook`'s layer (the site is not recorded).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from featureflow.config import ConfigError
from featureflow.paths import MODEL_CONFIG
from featureflow.sae.formats.common import (
    ReadSAE,
    Source,
    as_float64,
    check_layer,
    check_tensors,
    check_width,
    dtypes,
    fold_b_dec,
    gated_as_jumprelu,
    one_line,
    read_json,
    scalar_threshold,
)

log = logging.getLogger(__name__)

NAME = "dictionary_learning"
WEIGHTS, CONFIG = "ae.pt", MODEL_CONFIG  # its settings file has a Hugging Face model config's name
FILES = (WEIGHTS, CONFIG)
_LINEAR = {"encoder.weight": ("d_sae", "d_in"), "encoder.bias": ("d_sae",), "decoder.weight": ("d_in", "d_sae")}
_PARAMS = {"W_enc": ("d_in", "d_sae"), "b_enc": ("d_sae",), "W_dec": ("d_sae", "d_in"), "b_dec": ("d_in",)}
LAYOUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "AutoEncoder": {**_LINEAR, "bias": ("d_in",)},
    "AutoEncoderNew": {**_LINEAR, "decoder.bias": ("d_in",)},
    "AutoEncoderTopK": {**_LINEAR, "b_dec": ("d_in",)},
    "BatchTopKSAE": {**_LINEAR, "b_dec": ("d_in",)},
    "MatryoshkaBatchTopKSAE": _PARAMS,
    "JumpReluAutoEncoder": {**_PARAMS, "threshold": ("d_sae",)},
    "GatedAutoEncoder": {"encoder.weight": ("d_sae", "d_in"), "gate_bias": ("d_sae",), "mag_bias": ("d_sae",),
                         "r_mag": ("d_sae",), "decoder.weight": ("d_in", "d_sae"), "decoder_bias": ("d_in",)},
}
BUFFERS = {"AutoEncoderTopK": ("k", "threshold"), "BatchTopKSAE": ("k", "threshold"),
           "MatryoshkaBatchTopKSAE": ("k", "threshold", "group_sizes")}  # non-weight entries of the state dict
OURS = {"AutoEncoder": "standard", "AutoEncoderNew": "standard", "AutoEncoderTopK": "topk", "BatchTopKSAE": "jumprelu",
        "MatryoshkaBatchTopKSAE": "jumprelu", "JumpReluAutoEncoder": "jumprelu", "GatedAutoEncoder": "jumprelu"}


def detect(folder: Path) -> int:
    """2: ae.pt is there; 1: only a config.json with a `trainer`; 0: not a dictionary_learning folder."""
    if (folder / WEIGHTS).is_file():
        return 2
    try:
        return int((folder / CONFIG).is_file() and isinstance(read_json(folder / CONFIG, "", "").get("trainer"), dict))
    except ConfigError:
        return 0


def _load(path: Path, at: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{at}: no {path.name} in '{path.parent}'")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors alike: one line
        raise ConfigError(f"{at}: {path} cannot be read as a state dict ({type(err).__name__}: {one_line(err)[:200]})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ConfigError(f"{at}: {path} holds {type(state).__name__}, not a state dict")
    if "ae" in state and "optimizer" in state:
        raise ConfigError(f"{at}: {path.name} is a training backup (step {state.get('step')}), not a finished SAE; "
                          "its biases may be on normalised activations: import the final ae.pt")
    return state


def _buffers(state: dict[str, Any], cls: str, at: str) -> dict[str, torch.Tensor]:
    """The class's buffers (k, threshold, group_sizes), taken out of `state`."""
    missing = [k for k in BUFFERS.get(cls, ()) if k not in state]
    if missing:
        raise ConfigError(f"{at}: no {', '.join(missing)} in the state dict of a {cls} (found: {', '.join(sorted(state))})")
    return {k: state.pop(k) for k in BUFFERS.get(cls, ())}


def _k(value: torch.Tensor, at: str, d_sae: int) -> int:
    if value.numel() != 1 or value.is_floating_point() or not 1 <= int(value) <= d_sae:
        raise ConfigError(f"{at}: k {value.tolist()} is not one integer in [1, {d_sae}]")
    return int(value)


def _convert(cls: str, state: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], at: str,
             d_sae: int) -> tuple[dict[str, torch.Tensor], dict[str, Any], list[str]]:
    """Our weights (float64), the architecture's cfg keys and what was folded, for class `cls`."""
    w = as_float64(state, tuple(LAYOUTS[cls]))
    folded: list[str] = []
    keys: dict[str, Any] = {}
    if cls == "GatedAutoEncoder":
        ours = {**gated_as_jumprelu(w["encoder.weight"].T, w["gate_bias"], w["r_mag"], w["mag_bias"]),
                "W_dec": w["decoder.weight"].T, "b_dec": w["decoder_bias"]}
        folded.append("gated encoder as JumpReLU: W_enc * exp(r_mag), b_enc = mag_bias, threshold = mag_bias - exp(r_mag) * gate_bias")
    elif "W_enc" in w:
        ours = {k: w[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold") if k in w}
    else:
        bias = next(k for k in ("bias", "b_dec", "decoder.bias") if k in w)
        ours = {"W_enc": w["encoder.weight"].T, "b_enc": w["encoder.bias"], "W_dec": w["decoder.weight"].T, "b_dec": w[bias]}
    if cls in ("AutoEncoderNew", "JumpReluAutoEncoder"):
        fold_b_dec(ours, folded)
    if cls == "AutoEncoderTopK":
        keys = {"k": _k(buffers["k"], at, d_sae), "rescale_acts_by_decoder_norm": False}
    if cls in ("BatchTopKSAE", "MatryoshkaBatchTopKSAE"):
        _k(buffers["k"], at, d_sae)
        ours["threshold"] = scalar_threshold(at, "threshold", buffers["threshold"], d_sae)
        folded.append(f"the global threshold {float(buffers['threshold']):g} as every latent's JumpReLU threshold")
    if cls == "MatryoshkaBatchTopKSAE" and int(buffers["group_sizes"].sum()) != d_sae:
        raise ConfigError(f"{at}: group_sizes {buffers['group_sizes'].tolist()} do not sum to the {d_sae} latents")
    return ours, keys, folded


def read(src: Source) -> ReadSAE:
    """The dictionary_learning SAE in `src.folder`, checked against the run's layer and width."""
    cfg = read_json(src.folder / CONFIG, src.at, f"a dictionary_learning SAE folder holds {WEIGHTS} and {CONFIG}")
    at_cfg, at_weights = f"{src.at}: {CONFIG}", f"{src.at}: {WEIGHTS}"
    trainer = cfg.get("trainer")
    if not isinstance(trainer, dict):
        raise ConfigError(f"{at_cfg}: no 'trainer' object (dictionary_learning's config.json names the class in trainer.dict_class)")
    cls = trainer.get("dict_class")
    if cls not in LAYOUTS:
        raise ConfigError(f"{at_cfg}: trainer.dict_class '{cls}' is not a dictionary_learning class featureflow imports "
                          f"(known: {', '.join(LAYOUTS)})")
    check_width(at_cfg, "trainer.activation_dim", trainer.get("activation_dim"), src.d_in, src.hook_name)
    if isinstance(trainer.get("layer"), int):
        check_layer(at_cfg, "trainer.layer", trainer["layer"], src.hook_name)
    state = _load(src.folder / WEIGHTS, src.at)
    original_dtypes = dtypes({k: v for k, v in state.items() if isinstance(v, torch.Tensor)})
    if cls == "AutoEncoder" and "decoder.bias" in state and "bias" not in state:
        cls = "AutoEncoderNew"  # the trainers write 'AutoEncoder' whatever dict_class they were given
    buffers = _buffers(state, cls, at_weights)
    d_sae = check_tensors(state, at_weights, LAYOUTS[cls], src.d_in, f"a {cls}")
    if trainer.get("dict_size") is not None and trainer["dict_size"] != d_sae:
        raise ConfigError(f"{at_weights}: {d_sae} latents, but {CONFIG} says dict_size {trainer['dict_size']}")
    weights, keys, folded = _convert(cls, state, buffers, at_weights, d_sae)
    buffer = cfg.get("buffer") if isinstance(cfg.get("buffer"), dict) else {}
    return ReadSAE(OURS[cls], weights, cls, keys, folded,
                   {"original_cfg": cfg, "original_dtypes": original_dtypes, "dict_class": cls,
                    "buffers": {k: v.tolist() for k, v in buffers.items()}, "submodule_name": trainer.get("submodule_name")},
                   {"context_size": buffer.get("ctx_len"), "dataset_path": None, "tokens": None})
