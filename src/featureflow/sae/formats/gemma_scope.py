"""Gemma Scope ``params.npz`` (google/gemma-scope-*: one folder per SAE, ``layer_<L>/width_<N>/average_l0_<M>``).

Arrays ``W_enc`` [d_in, d_sae], ``W_dec`` [d_sae, d_in], ``b_enc`` [d_sae], ``b_dec`` [d_in], ``threshold``
[d_sae] (float32), as the Gemma Scope tutorial's ``JumpReLUSAE`` reads them; its encode::

    pre = x @ W_enc + b_enc;  f = ReLU(pre) * (pre > threshold)

with no b_dec subtracted (SAELens loads them with ``apply_b_dec_to_input: false``), so ``b_dec @ W_enc``
is folded into ``b_enc``; decode ``f @ W_dec + b_dec``. The file records no hook: the width is
checked, and the layer where the path has a ``layer_<L>`` part. Refused: a file without ``threshold``,
or with arrays a JumpReLU SAE does not have.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import torch

from featureflow.config import ConfigError
from featureflow.sae.formats.common import (
    ReadSAE,
    Source,
    as_float64,
    check_layer,
    check_tensors,
    dtypes,
    fold_b_dec,
    one_line,
)

NAME = "gemma_scope"
WEIGHTS = "params.npz"
FILES = (WEIGHTS,)
LAYOUT = {"W_enc": ("d_in", "d_sae"), "b_enc": ("d_sae",), "W_dec": ("d_sae", "d_in"), "b_dec": ("d_in",),
          "threshold": ("d_sae",)}
_LAYER = re.compile(r"^layer_(\d+)$")


def detect(folder: Path) -> int:
    """2: params.npz is there; 0: not a Gemma Scope folder."""
    return 2 if (folder / WEIGHTS).is_file() else 0


def _load(path: Path, at: str) -> dict[str, torch.Tensor]:
    import numpy as np

    if not path.is_file():
        raise ConfigError(f"{at}: no {path.name} in '{path.parent}'")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ConfigError(f"{at}: {path} cannot be read ({one_line(err)})") from None
    # some releases spell the matrices w_enc / w_dec (SAELens' gemma_2 loader renames them the same way)
    return {("W_" + k[2:] if k.startswith("w_") else k): torch.from_numpy(v) for k, v in arrays.items()}


def read(src: Source) -> ReadSAE:
    """The Gemma Scope SAE in `src.folder`, checked against the run's width (and layer, from the path)."""
    at = f"{src.at}: {WEIGHTS}"
    tensors = _load(src.folder / WEIGHTS, src.at)
    if "threshold" not in tensors:
        raise ConfigError(f"{at}: no array threshold (found: {', '.join(sorted(tensors)) or 'none'}); Gemma Scope "
                          "SAEs are JumpReLU SAEs, whose encode needs the per-latent threshold")
    check_tensors(tensors, at, LAYOUT, src.d_in, "a Gemma Scope JumpReLU SAE")
    for part in Path(src.path or src.folder.name).parts:
        if match := _LAYER.match(part):
            check_layer(src.at, f"path part '{part}': layer", int(match.group(1)), src.hook_name)
    weights = as_float64(tensors, tuple(LAYOUT))
    folded: list[str] = []
    fold_b_dec(weights, folded)
    return ReadSAE("jumprelu", weights, "jumprelu", {}, folded, {"original_dtypes": dtypes(tensors)})
