"""SAE feature activations of every model on one shared token sample, stored sparse.

The sample (``results/flow/sample.npz``, featureflow.flow.sample) is drawn once from the combined
training data of the whole lineage (paper footnote 7: 3M tokens of the common distribution) in
blocks of `context_size` tokens. It holds the token ids [n_blocks, context], and for every block the corpus
and the offset in that corpus' token file where it starts, so that later stages can show contexts.

Each model's activations (``results/flow/acts/{model}.npz``) form a CSR matrix [n_blocks * context,
d_sae] whose row ``block * context + position`` is one token position of the sample, computed
from raw ``hook_post`` activations with the saved (SAELens-format) SAE weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

from featureflow.flow.arrays import load_sample, save_acts
from featureflow.runtime import pick_device
from featureflow.sae import check_hook, hook_activations, load_sae
from featureflow.settings import Resources

log = logging.getLogger(__name__)


@torch.no_grad()
def feature_activations(model_dir: str | Path, sae_dir: str | Path, blocks: np.ndarray, hook_name: str,
                        device: torch.device | str, batch_tokens: int) -> sp.csr_matrix:
    """SAE features of every token position of `blocks` [n_blocks, context]: CSR [n_blocks*context, d_sae]."""
    from featureflow.lm import load_for_inference

    device = torch.device(device)
    model = load_for_inference(model_dir).to(device)
    check_hook(model, hook_name, Path(model_dir).name)
    sae = load_sae(sae_dir).to(device)
    per_batch = max(1, batch_tokens // blocks.shape[1])
    pieces: list[sp.csr_matrix] = []
    for start in tqdm(range(0, len(blocks), per_batch), desc="feature acts", unit="batch", mininterval=5):
        ids = torch.from_numpy(np.asarray(blocks[start:start + per_batch], dtype=np.int64)).to(device)
        f = sae.encode(hook_activations(model, ids, hook_name).flatten(0, 1)).float()
        rows, cols = torch.nonzero(f, as_tuple=True)
        pieces.append(sp.csr_matrix((f[rows, cols].cpu().numpy(), (rows.cpu().numpy(), cols.cpu().numpy())),
                                    shape=tuple(f.shape)))
    return sp.vstack(pieces, format="csr", dtype=np.float32)


@dataclass(frozen=True)
class FeatureSource:
    """Where one model's features come from: its model folder, its SAE folder and the SAE's hook."""

    model_dir: str | Path
    sae_dir: str | Path
    hook_name: str


def compute_feature_acts(model: str, source: FeatureSource, sample_npz: str | Path, out_npz: str | Path, batch_tokens: int,
                         resources: Resources) -> None:
    """The `feature_acts` rule: one model's SAE features (at `source.hook_name`) on the common sample."""
    torch.set_num_threads(resources.threads)
    sample = load_sample(sample_npz)
    acts = feature_activations(source.model_dir, source.sae_dir, sample["blocks"], source.hook_name, pick_device(resources.device),
                               batch_tokens)
    save_acts(acts, sample, model, out_npz)
