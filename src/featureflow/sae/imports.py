"""Import an SAE trained elsewhere in place of training one.

A model's config may name an SAE instead of a recipe to train one::

    models:
      lua: {parent: base, train_on: [lua], sae: {pretrained: owner/name, path: blocks.0.mlp.hook_post, revision: main}}

`pretrained` is a local folder or a Hugging Face hub id (fetched into the run's `data_cache`,
`featureflow.hub.snapshot`); `path` the subfolder that holds the SAE; `format` one of
featureflow.sae.formats (SAELens, sparsify, dictionary_learning, Gemma Scope), by default detected
from the files. The format's reader checks the SAE against the lineage (the `sae.hook` site where
the files record one, the model's width, no data-dependent input normalisation) and folds its
encode into a registered architecture (standard, topk or jumprelu) exactly; it is written to
``results/sae/{model}/`` in the form a trained SAE has (featureflow.sae.model), so that every later
stage reads it the same way (featureflow.sae.saved):

- the weights act on raw activations, and `SavedSAE.encode` gives the source library's own encode;
- ``W_dec`` keeps its rows as they are (renormalising them would change the reconstruction);
  whether they have unit norm is recorded;
- ``featureflow_sae.json`` has the keys of a trained SAE's, with nothing folded (scale 1, no mean),
  no training (0 steps), and under ``imported`` where it came from (source, path, revision, the hub
  commit), its format, the source's architecture, what was folded and its original settings;
- ``train_log.csv`` holds the header only: the training curves draw nothing for it.

Nothing is written before the whole SAE has been read and checked; the files go to a folder beside
`out_dir` first and are moved in.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from featureflow.config import ConfigError
from featureflow.hub import snapshot
from featureflow.lineage import Pretrained
from featureflow.paths import SAE_CFG, SAE_EXTRA, SAE_WEIGHTS, TRAIN_LOG
from featureflow.sae.architectures import ARCHITECTURES, BASE_TENSORS, log_fields
from featureflow.sae.formats import FILES, ReadSAE, Source, choose_format
from featureflow.sae.model import saelens_cfg

log = logging.getLogger(__name__)

UNIT_NORM_TOL = 1e-3


@dataclass(frozen=True)
class _Shape:
    """What `saelens_cfg` reads of an SAE."""

    d_in: int
    d_sae: int


def _finish(read: ReadSAE, at: str, d_in: int) -> dict[str, torch.Tensor]:
    """The weights as saved (float32), after checking that they are what the architecture reads."""
    arch = ARCHITECTURES[read.architecture]
    expected = {*BASE_TENSORS, *arch.extra_tensors}
    if set(read.weights) != expected:  # a reader's mistake, not the user's: still one line
        raise ConfigError(f"{at}: read tensors {sorted(read.weights)}, but a {arch.name} SAE has {sorted(expected)}")
    d_sae = read.weights["W_enc"].shape[1]
    shapes = {"W_enc": [d_in, d_sae], "b_enc": [d_sae], "W_dec": [d_sae, d_in], "b_dec": [d_in], "threshold": [d_sae]}
    out = {}
    for key, value in read.weights.items():
        value = value.float().contiguous()
        if list(value.shape) != shapes[key]:
            raise ConfigError(f"{at}: {key} was read as {list(value.shape)}, expected {shapes[key]}")
        if not torch.isfinite(value).all():  # e.g. exp(r_mag) of a gated SAE beyond float32
            raise ConfigError(f"{at}: {key} is not finite in float32 after folding ({'; '.join(read.folded) or 'nothing folded'})")
        out[key] = value
    if arch.name == "topk" and not 1 <= int(read.cfg_keys.get("k") or 0) <= d_sae:
        raise ConfigError(f"{at}: k {read.cfg_keys.get('k')!r} is not in [1, d_sae {d_sae}]")
    return out


def _write(out_dir: Path, files: dict[str, Any], weights: dict[str, torch.Tensor], header: tuple[str, ...]) -> None:
    """The SAE folder's files (JSON objects by name, the weights, the log's header) written beside
    `out_dir` and then moved into it."""
    from safetensors.torch import save_file

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.import-", dir=out_dir.parent))
    try:
        save_file(weights, str(staging / SAE_WEIGHTS))
        for name, content in files.items():
            (staging / name).write_text(json.dumps(content, indent=2) + "\n")
        with open(staging / TRAIN_LOG, "w", newline="") as fh:  # no training: the header only
            csv.writer(fh).writerow(header)
        out_dir.mkdir(exist_ok=True)
        for path in staging.iterdir():
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def import_sae(*, model: str, source: Pretrained, out_dir: str | Path, hook_name: str, d_in: int,
               cache_dir: str | Path | None) -> dict[str, Any]:
    """Import the SAE at `source` (any format of featureflow.sae.formats) as the SAE of `model` into `out_dir`.

    `source`: a local folder or hub id, `path` inside it, hub `revision`, file `format` ("auto":
    detected); hub ids are fetched into `cache_dir` (the `data_cache`; with the hub offline, a
    snapshot already there is used). `hook_name` and `d_in`: this run's activation site (`sae.hook`)
    and the model's width there. Anything featureflow cannot use exactly stops with one line
    (ConfigError) that names the model, the key and the folder; nothing is written then. Returns
    what `featureflow_sae.json` holds.
    """
    what = f"config key 'models.{model}.sae.pretrained'"
    folder, commit = snapshot(source, what, str(cache_dir) if cache_dir else None, list(FILES))
    at = f"{what} ('{source.source}'" + (f", path '{source.path}'" if source.path else "") + ")"
    fmt = choose_format(folder, at, source.format)
    read = fmt.read(Source(folder, at, hook_name, d_in, source.path))
    weights = _finish(read, at, d_in)
    arch = ARCHITECTURES[read.architecture]
    d_sae = int(weights["W_enc"].shape[1])
    norms = weights["W_dec"].double().norm(dim=1)
    unit = bool(torch.allclose(norms, torch.ones_like(norms), atol=UNIT_NORM_TOL, rtol=0))

    ours = saelens_cfg(_Shape(d_in, d_sae), model, hook_name, read.settings.get("context_size"),
                       read.settings.get("dataset_path"), {"architecture": arch.name, **read.cfg_keys})
    imported = {
        "source": source.source, "path": source.path, "revision": source.revision, "commit": commit,
        "folder": str(folder), "on_hub": commit is not None, "format": fmt.NAME,
        "source_architecture": read.source_architecture, "architecture": arch.name, "folded": read.folded,
        **read.details,
        "decoder_rows_unit_norm": unit,
        "decoder_row_norm": {"min": float(norms.min()), "mean": float(norms.mean()), "max": float(norms.max())},
    }
    extra = {"model": model, "origin": "imported", "model_dir": None,
             "settings": {"hook": hook_name, "tokens": read.settings.get("tokens")},
             "seed": None, "steps": 0, "activation_scale": 1.0, "activation_mean_folded_into": None,
             "scale_folded_into": None, "train_seconds": 0.0, "resumed_from_step": None, "device": None,
             "compiled": False, "imported": imported}
    out = Path(out_dir)
    _write(out, {SAE_CFG: ours, SAE_EXTRA: extra}, weights, log_fields(arch))
    log.info("%s: imported the %s SAE %s%s%s (%s as %s; d_in %d, d_sae %d) into %s; folded: %s; decoder rows %s "
             "(norms %.4g to %.4g)", model, fmt.NAME, source.source, f"/{source.path}" if source.path else "",
             f" at commit {commit}" if commit else " (local folder)", read.source_architecture, arch.name, d_in, d_sae,
             out, "; ".join(read.folded) or "nothing", "of unit norm" if unit else "NOT of unit norm, kept as they are",
             float(norms.min()), float(norms.max()))
    return extra
