"""Import an SAE trained elsewhere (SAELens on-disk layout) in place of training one.

A model's config may name an SAE instead of a recipe to train one::

    models:
      lua: {parent: base, train_on: [lua], sae: {pretrained: owner/name, path: blocks.0.mlp.hook_post, revision: main}}

`pretrained` is a local folder or a Hugging Face hub id (fetched into the run's `data_cache`,
`featureflow.hub.snapshot`); `path` the subfolder that holds ``cfg.json`` and
``sae_weights.safetensors``. The SAE is checked against the lineage (a registered architecture, today ``standard`` with
a ReLU, the `sae.hook` site, the model's width, no data-dependent input normalisation) and written
to ``results/sae/{model}/`` in the form a trained SAE has (featureflow.sae.model), so that every
later stage reads it the same way:

- the weights act on raw activations, and `SavedSAE.encode` gives exactly SAELens' standard encode
  ``ReLU((x - b_dec * apply_b_dec_to_input) @ W_enc + b_enc)``: with ``apply_b_dec_to_input``
  false, ``b_dec @ W_enc`` is folded into ``b_enc`` (our encode always subtracts ``b_dec``);
  a ``finetuning_scaling_factor`` (older SAELens) is folded into the rows of ``W_dec``;
- ``W_dec`` keeps its rows as they are (renormalising them would change the reconstruction);
  whether they have unit norm is recorded;
- ``featureflow_sae.json`` has the keys of a trained SAE's, with nothing folded (scale 1, no mean),
  no training (0 steps), and under ``imported`` where it came from (source, path, revision, the
  hub commit) and its original cfg;
- ``train_log.csv`` holds the header only: the training curves draw nothing for it.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from featureflow.config import ConfigError
from featureflow.hub import snapshot
from featureflow.lineage import Pretrained
from featureflow.paths import SAE_CFG, SAE_EXTRA, SAE_WEIGHTS, TRAIN_LOG
from featureflow.sae.architectures import ARCHITECTURES, BASE_TENSORS, Architecture, log_fields
from featureflow.sae.model import saelens_cfg

log = logging.getLogger(__name__)

# Older SAELens files may hold a per-feature factor applied to the features before decoding.
SCALING_KEYS = ("finetuning_scaling_factor", "scaling_factor")
UNIT_NORM_TOL = 1e-3


@dataclass(frozen=True)
class _Shape:
    """What `saelens_cfg` reads of an SAE."""

    d_in: int
    d_sae: int


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _resolve(source: Pretrained, what: str, cache_dir: str | Path | None) -> tuple[Path, str | None]:
    """(folder holding cfg.json, hub commit or None): an existing local folder, else a hub snapshot."""
    return snapshot(source, what, str(cache_dir) if cache_dir else None, [SAE_CFG, SAE_WEIGHTS])


def _read_cfg(folder: Path, what: str) -> dict[str, Any]:
    path = folder / SAE_CFG
    if not path.is_file():
        raise ConfigError(f"{what}: no {SAE_CFG} in '{folder}' (an SAELens SAE folder holds {SAE_CFG} and {SAE_WEIGHTS})")
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{what}: {path} is not valid JSON ({_one_line(err)})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{what}: {path} holds {type(cfg).__name__}, not an object of SAELens settings")
    return cfg


def _cfg_value(cfg: dict[str, Any], key: str) -> Any:
    """A cfg key at the top level (SAELens < 6) or under `metadata` (SAELens 6: hook_name, model_name, ...)."""
    if key in cfg:
        return cfg[key]
    meta = cfg.get("metadata")
    return meta.get(key) if isinstance(meta, dict) else None


def _check_cfg(cfg: dict[str, Any], at: str, hook_name: str, d_in: int) -> tuple[Architecture, bool]:
    """Refuse what featureflow cannot use as it is; returns the architecture and apply_b_dec_to_input."""
    name = cfg.get("architecture") or "standard"  # files older than the key are standard SAEs
    if name not in ARCHITECTURES:
        raise ConfigError(f"{at}: architecture '{name}'; featureflow imports {', '.join(map(repr, ARCHITECTURES))} SAEs "
                          "(featureflow.sae.architectures) only")
    activation = cfg.get("activation_fn_str") or cfg.get("activation_fn") or "relu"
    if activation != "relu":
        raise ConfigError(f"{at}: activation_fn '{activation}'; featureflow imports SAEs with a ReLU only")
    normalize = cfg.get("normalize_activations")
    if normalize not in (None, "none"):
        raise ConfigError(f"{at}: normalize_activations '{normalize}'; SAELens normalises the input before encoding "
                          "(by a factor measured on the data, or per token), which fixed weights on raw activations "
                          "cannot reproduce: export the SAE with any constant factor folded in (normalize_activations 'none')")
    reshape = cfg.get("reshape_activations")
    if reshape not in (None, "none"):
        raise ConfigError(f"{at}: reshape_activations '{reshape}'; featureflow reads unreshaped activations only")
    hook = _cfg_value(cfg, "hook_name")
    if hook is None:
        log.warning("%s: no hook_name; assumed to be %s (sae.hook)", at, hook_name)
    elif hook != hook_name:
        raise ConfigError(f"{at}: hook_name '{hook}', but this run reads '{hook_name}' (config key 'sae.hook')")
    cfg_d_in = cfg.get("d_in")
    if cfg_d_in is not None and cfg_d_in != d_in:
        raise ConfigError(f"{at}: d_in {cfg_d_in}, but the model's activations at '{hook_name}' have width {d_in}")
    apply = cfg.get("apply_b_dec_to_input")
    if apply is None:
        log.warning("%s: no apply_b_dec_to_input; SAELens' default (true) assumed", at)
        return ARCHITECTURES[name], True
    return ARCHITECTURES[name], bool(apply)


def _read_weights(folder: Path, what: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / SAE_WEIGHTS
    if not path.is_file():
        raise ConfigError(f"{what}: no {SAE_WEIGHTS} in '{folder}'")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ConfigError(f"{what}: {path} cannot be read ({_one_line(err)})") from None


def _check_weights(tensors: dict[str, torch.Tensor], at: str, cfg: dict[str, Any], d_in: int) -> int:
    """Refuse missing, unknown, misshapen or non-finite tensors; returns d_sae."""
    missing = [k for k in BASE_TENSORS if k not in tensors]
    if missing:
        raise ConfigError(f"{at}: no tensor {', '.join(missing)} (found: {', '.join(sorted(tensors)) or 'none'})")
    unknown = sorted(set(tensors) - set(BASE_TENSORS) - set(SCALING_KEYS))
    if unknown:
        raise ConfigError(f"{at}: tensor {', '.join(unknown)} is not part of a standard SAE (another architecture?)")
    w_enc = tensors["W_enc"]
    if w_enc.ndim != 2:
        raise ConfigError(f"{at}: W_enc has shape {list(w_enc.shape)}, not [d_in, d_sae]")
    d_sae = int(w_enc.shape[1])
    expected = {"W_enc": [d_in, d_sae], "W_dec": [d_sae, d_in], "b_enc": [d_sae], "b_dec": [d_in]}
    for key in SCALING_KEYS:
        if key in tensors:
            expected[key] = [d_sae]
    for key, shape in expected.items():
        if list(tensors[key].shape) != shape:
            raise ConfigError(f"{at}: {key} has shape {list(tensors[key].shape)}, expected {shape} "
                              f"(d_in {d_in} of the model at the hook, d_sae {d_sae} from W_enc)")
        if not tensors[key].is_floating_point() or not torch.isfinite(tensors[key]).all():
            raise ConfigError(f"{at}: {key} holds {'non-finite values' if tensors[key].is_floating_point() else tensors[key].dtype}")
    cfg_d_sae = cfg.get("d_sae")
    if cfg_d_sae is not None and cfg_d_sae != d_sae:
        raise ConfigError(f"{at}: d_sae {cfg_d_sae} in {SAE_CFG}, but the weights have {d_sae} features")
    return d_sae


def _convert(tensors: dict[str, torch.Tensor], apply_b_dec: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights for `SavedSAE` (float32) with SAELens' standard encode and decode, and what was folded."""
    w_enc, w_dec, b_enc, b_dec = (tensors[k].double() for k in ("W_enc", "W_dec", "b_enc", "b_dec"))
    folded: dict[str, Any] = {"b_dec_folded_into_b_enc": not apply_b_dec, "finetuning_scaling_factor_folded_into_W_dec": False}
    factor = next((tensors[k].double() for k in SCALING_KEYS if k in tensors), None)
    if factor is not None and not torch.equal(factor, torch.ones_like(factor)):
        w_dec = w_dec * factor[:, None]  # decode (f * s) @ W_dec = f @ (s[:, None] * W_dec)
        folded["finetuning_scaling_factor_folded_into_W_dec"] = True
    if not apply_b_dec:
        b_enc = b_enc + b_dec @ w_enc  # x @ W + b_enc = (x - b_dec) @ W + (b_enc + b_dec @ W)
    out = {"W_enc": w_enc, "b_enc": b_enc, "W_dec": w_dec, "b_dec": b_dec}
    return {k: v.float().contiguous() for k, v in out.items()}, folded


def import_sae(*, model: str, source: Pretrained, out_dir: str | Path, hook_name: str, d_in: int,
               cache_dir: str | Path | None) -> dict[str, Any]:
    """Import the SAELens-format SAE at `source` as the SAE of `model` into `out_dir`.

    `source`: a local folder or hub id, `path` inside it, hub `revision`; hub ids are fetched into
    `cache_dir` (the `data_cache`; with the hub offline, a snapshot already there is used).
    `hook_name` and `d_in`: this run's activation site (`sae.hook`) and the model's width there.
    Anything featureflow cannot use exactly stops with one line (ConfigError) that names the model
    and the key; nothing is written then. Returns what `featureflow_sae.json` holds.
    """
    what = f"config key 'models.{model}.sae.pretrained'"
    folder, commit = _resolve(source, what, cache_dir)
    at = f"{what} ('{source.source}'" + (f", path '{source.path}'" if source.path else "") + ")"
    cfg = _read_cfg(folder, at)
    at_cfg, at_weights = f"{at}: {SAE_CFG}", f"{at}: {SAE_WEIGHTS}"
    arch, apply_b_dec = _check_cfg(cfg, at_cfg, hook_name, d_in)
    tensors = _read_weights(folder, at)
    d_sae = _check_weights(tensors, at_weights, cfg, d_in)
    weights, folded = _convert(tensors, apply_b_dec)
    norms = weights["W_dec"].double().norm(dim=1)
    unit = bool(torch.allclose(norms, torch.ones_like(norms), atol=UNIT_NORM_TOL, rtol=0))

    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / SAE_WEIGHTS))
    ours = saelens_cfg(_Shape(d_in, d_sae), model, hook_name, _cfg_value(cfg, "context_size"),
                       _cfg_value(cfg, "dataset_path"), {"architecture": arch.name})
    (out / SAE_CFG).write_text(json.dumps(ours, indent=2) + "\n")
    imported = {
        "source": source.source, "path": source.path, "revision": source.revision, "commit": commit,
        "folder": str(folder), "on_hub": commit is not None,
        "original_cfg": cfg, "original_dtypes": {k: str(v.dtype).removeprefix("torch.") for k, v in tensors.items()},
        "apply_b_dec_to_input": apply_b_dec, **folded,
        "decoder_rows_unit_norm": unit,
        "decoder_row_norm": {"min": float(norms.min()), "mean": float(norms.mean()), "max": float(norms.max())},
    }
    extra = {"model": model, "origin": "imported", "model_dir": None,
             "settings": {"hook": hook_name, "tokens": _cfg_value(cfg, "training_tokens")},
             "seed": None, "steps": 0, "activation_scale": 1.0, "activation_mean_folded_into": None,
             "scale_folded_into": None, "train_seconds": 0.0, "resumed_from_step": None, "device": None,
             "compiled": False, "imported": imported}
    (out / SAE_EXTRA).write_text(json.dumps(extra, indent=2) + "\n")
    with open(out / TRAIN_LOG, "w", newline="") as fh:  # no training: the header only
        csv.writer(fh).writerow(log_fields(arch))
    log.info("%s: imported SAE %s%s%s (d_in %d, d_sae %d) into %s; apply_b_dec_to_input %s%s; decoder rows %s "
             "(norms %.4g to %.4g)", model, source.source, f"/{source.path}" if source.path else "",
             f" at commit {commit}" if commit else " (local folder)", d_in, d_sae, out, apply_b_dec,
             " (b_dec folded into b_enc)" if folded["b_dec_folded_into_b_enc"] else "",
             "of unit norm" if unit else "NOT of unit norm, kept as they are", float(norms.min()), float(norms.max()))
    return extra
