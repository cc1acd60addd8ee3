"""The flow stage's array files, readable without torch: the common sample and the activations.

``sample.npz``: token ids [n_blocks, context] (``blocks``), each block's corpus index and start
offset in that corpus' token file, the corpus names and a digest of the blocks.
``acts/{model}.npz``: a CSR matrix [n_blocks * context, d_sae] (row ``block * context + position``)
with the token id of every row and the model and sample digest it was computed for.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)


def sample_digest(blocks: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(blocks, dtype=np.uint32).tobytes()).hexdigest()[:16]


def save_sample(sample: dict[str, Any], out_npz: str | Path) -> None:
    np.savez(out_npz, **sample)
    counts = np.bincount(sample["corpus"], minlength=len(sample["corpora"]))
    log.info("common sample %s: %d blocks x %d tokens; blocks per corpus: %s", sample["digest"], *sample["blocks"].shape,
             dict(zip(sample["corpora"].tolist(), counts.tolist(), strict=True)))


def load_sample(path: str | Path) -> dict[str, Any]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def save_acts(acts: sp.csr_matrix, sample: dict[str, Any], model: str, out_npz: str | Path) -> None:
    """Write the sparse activations with the sample's token ids (one per row) and its digest."""
    np.savez(out_npz, data=acts.data.astype(np.float32), indices=acts.indices.astype(np.int32), indptr=acts.indptr,
             shape=np.array(acts.shape), tokens=sample["blocks"].reshape(-1), context_size=sample["blocks"].shape[1],
             meta_model=np.array(model), meta_sample=sample["digest"])
    density = np.bincount(acts.indices, minlength=acts.shape[1]) / acts.shape[0]
    log.info("%s: %d positions x %d features, mean L0 %.1f, %d features never fire on the sample (%.1f%%)",
             model, *acts.shape, acts.nnz / acts.shape[0], int((density == 0).sum()), 100 * (density == 0).mean())


def load_acts(path: str | Path) -> tuple[sp.csr_matrix, np.ndarray, dict[str, str]]:
    """(activations CSR [positions, d_sae], token id per position, {"model", "sample"})."""
    with np.load(path) as z:
        acts = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        return acts, z["tokens"], {"model": str(z["meta_model"]), "sample": str(z["meta_sample"])}
