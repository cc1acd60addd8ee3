"""What each SAE feature does on the common sample: density, activation histogram, top-activating
contexts, the tokens it is most active on, and the LLR proxy of token hypotheses.

Inputs are a model's feature activations (``results/flow/acts/{model}.npz``: CSR [positions,
d_sae], with the token id of every position) and the tokenizer. Everything is computed from the
sparse columns (one pass over the nonzeros per statistic), so a paper-size SAE (16384 features,
3M positions, ~90M nonzeros) takes minutes at most (benchmarks/feature_stats.py).

LLR proxy (paper Appendix D, after Bricken et al. 2023). A hypothesis H is a set of token
strings; a vocabulary entry belongs to H when its text, stripped of surrounding whitespace, is one
of them. With P(H) the share of the sample's positions whose token is in H (the unigram
distribution of the sample) and P_f(H) the share of feature f's *activation mass* that falls on
those positions (each position weighted by f's activation there)::

    LLR(f, H) = ln( P_f(H) / P(H) )

A feature that fires only on H scores ln(1 / P(H)), the most any feature can; one that puts as
much of its activation on H as the sample does scores 0. It is NaN when f puts no activation on H
or H never occurs in the sample (no evidence either way). `other_to_h` = (1 - P_f(H)) / P_f(H):
how much more activation the feature puts on other tokens than on H (the paper: "7 times more
active for other tokens").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from featureflow.inputs import LineageFiles, folder_of
from featureflow.settings import FeatureStatsSettings

STATS_VERSION = 1


def hypothesis_tokens(token_texts: list[str], strings: list[str]) -> np.ndarray:
    """Token ids whose text (surrounding whitespace stripped) is one of `strings`."""
    wanted = {s.strip() for s in strings}
    return np.array([i for i, t in enumerate(token_texts) if t.strip() in wanted], dtype=np.int64)


def llr_scores(acts: sp.csr_matrix, tokens: np.ndarray, h_ids: np.ndarray) -> dict[str, np.ndarray]:
    """LLR(f, H) of every feature (module docstring) with the quantities it is made of."""
    in_h = np.isin(tokens, h_ids)
    p_h = in_h.mean()
    mass = np.asarray(acts.sum(axis=0), dtype=np.float64).ravel()
    mass_h = np.asarray(acts.T @ in_h.astype(np.float64), dtype=np.float64).ravel()
    fires_h = np.asarray((acts[in_h] > 0).sum(axis=0)).ravel() if in_h.any() else np.zeros(acts.shape[1], dtype=np.int64)
    fires = np.bincount(acts.indices, minlength=acts.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(mass > 0, mass_h / mass, np.nan)
        llr = np.where((share > 0) & (p_h > 0), np.log(share / p_h), np.nan)
        other = np.where(mass_h > 0, (mass - mass_h) / mass_h, np.nan)
    return {"llr": llr, "mass_share": share, "other_to_h": other, "fires_on_h": fires_h, "fires": fires, "p_h": np.float64(p_h)}


@dataclass(frozen=True)
class StatsSizes:
    """How much `feature_stats` keeps per feature: top contexts, top tokens (seen `min_token_count` times or more), histogram bins."""

    top_contexts: int
    top_tokens: int
    min_token_count: int
    bins: int


def feature_stats(acts: sp.csr_matrix, tokens: np.ndarray, vocab_size: int, sizes: StatsSizes) -> dict[str, np.ndarray]:
    """Density, max and mean activation, histogram [d_sae, sizes.bins] (linear from 0 to the feature's max),
    top-activating positions and values [d_sae, sizes.top_contexts], and the tokens with the highest mean
    activation [d_sae, sizes.top_tokens] (tokens seen fewer than `sizes.min_token_count` times are skipped)."""
    from featureflow.analysis.stats_kernels import _histograms, _top_per_column, _top_tokens

    csc = acts.tocsc()
    csc.sort_indices()
    indptr, rows, vals = csc.indptr.astype(np.int64), csc.indices.astype(np.int64), csc.data.astype(np.float32)
    n_pos = acts.shape[0]
    fires = np.diff(indptr)
    col_max = np.zeros(acts.shape[1], dtype=np.float32)
    nonempty = fires > 0
    col_max[nonempty] = np.maximum.reduceat(vals, indptr[:-1][nonempty]) if vals.size else 0
    mass = np.add.reduceat(vals.astype(np.float64), indptr[:-1][nonempty]) if vals.size else np.zeros(0)
    mean = np.zeros(acts.shape[1], dtype=np.float32)
    mean[nonempty] = mass / fires[nonempty]
    top_rows, top_vals = _top_per_column(indptr, rows, vals, sizes.top_contexts)
    token_count = np.bincount(tokens, minlength=vocab_size).astype(np.int64)
    tok_ids, tok_mean = _top_tokens(indptr, rows, vals, tokens.astype(np.int64), token_count, sizes.min_token_count, sizes.top_tokens,
                                    vocab_size)
    return {"density": (fires / max(n_pos, 1)).astype(np.float32), "fires": fires.astype(np.int64), "max": col_max,
            "mean": mean, "hist": _histograms(indptr, vals, col_max, sizes.bins), "top_rows": top_rows, "top_vals": top_vals,
            "top_token_ids": tok_ids, "top_token_means": tok_mean, "positions": np.int64(n_pos),
            "version": np.int64(STATS_VERSION)}


def logit_effects(model_dir: str | Path, sae_dir: str | Path, hook_name: str, k: int, batch: int = 1024) -> dict[str, np.ndarray]:
    """Each feature's direct effect on the logits, as SAE dashboards show it (sae_vis, Neuronpedia):
    W_U (g * (W_out d_f)) for decoder row d_f, with W_out the map from the hook into the residual
    stream (the MLP's output projection for mlp.hook_post) and g the final norm's weights (the
    norm's division by the residual's size depends on the input and is left out; a LayerNorm's
    centring is kept). Returns the `k` most promoted and most suppressed token ids per feature
    with their values: [d_sae, k] each."""
    import torch

    from featureflow.lm import load_for_inference
    from featureflow.sae import final_norm, load_sae, output_map

    lm = load_for_inference(model_dir)
    with torch.no_grad():
        dirs = load_sae(sae_dir).W_dec.float() @ output_map(lm, hook_name).float().T  # [d_sae, d_model]
        norm = final_norm(lm)
        if isinstance(norm, torch.nn.LayerNorm):  # it subtracts the mean over d_model before scaling
            dirs = dirs - dirs.mean(1, keepdim=True)
        dirs = dirs * norm.weight.float()
        unembed = lm.get_output_embeddings().weight.float()  # [vocab, d_model]
        up_v, up_i, down_v, down_i = [], [], [], []
        for start in range(0, len(dirs), batch):
            logits = dirs[start:start + batch] @ unembed.T
            top, bottom = logits.topk(k, dim=1), (-logits).topk(k, dim=1)
            up_v.append(top.values), up_i.append(top.indices), down_v.append(-bottom.values), down_i.append(bottom.indices)
    return {"logit_up_ids": torch.cat(up_i).numpy(), "logit_up": torch.cat(up_v).numpy(),
            "logit_down_ids": torch.cat(down_i).numpy(), "logit_down": torch.cat(down_v).numpy()}


def write_feature_stats(files: LineageFiles, settings: FeatureStatsSettings, hook_name: str | None, out_npz: str | Path,
                        out_csv: str | Path) -> None:
    """The `feature_stats` rule for the one model of `files`: its statistics (npz; with the logit
    effects when its model and SAE weights are among the files) and its per-feature table with LLRs (csv)."""
    import pandas as pd

    from featureflow.flow import load_acts

    (model,) = files.models
    acts, tokens, meta = load_acts(files.acts[model])
    texts = token_texts(files.tokenizer_dir)
    stats = feature_stats(acts, tokens.astype(np.int64), len(texts), StatsSizes(settings.top_contexts, settings.top_tokens,
                                                                                settings.min_token_count, settings.histogram_bins))
    table = pd.DataFrame({"feature": np.arange(acts.shape[1]), "density": stats["density"], "fires": stats["fires"],
                          "max": stats["max"], "mean": stats["mean"]})
    for name, strings in settings.hypotheses.items():
        ids = hypothesis_tokens(texts, strings)
        s = llr_scores(acts, tokens, ids)
        table[f"llr_{name}"] = s["llr"]
        table[f"share_{name}"] = s["mass_share"]
        table[f"other_to_{name}"] = s["other_to_h"]
        table[f"fires_on_{name}"] = s["fires_on_h"]
        stats[f"p_{name}"] = s["p_h"]
    if model in files.weights and model in files.sae_weights and hook_name is not None:
        stats |= logit_effects(folder_of(files.weights[model]), folder_of(files.sae_weights[model]), hook_name, settings.top_tokens)
    np.savez_compressed(out_npz, **stats, model=np.array(model), sample=np.array(meta["sample"]))
    table.round(6).to_csv(out_csv, index=False)


def token_texts(tokenizer_dir: str | Path) -> list[str]:
    """The text of every token id of the tokenizer in `tokenizer_dir`, as it appears in decoded output
    (byte-level pieces decoded one by one)."""
    from featureflow.data import load_tokenizer

    tok, meta = load_tokenizer(tokenizer_dir)
    return [tok.decode([i]) for i in range(meta["vocab_size"])]


def top_blocks(stats: dict[str, np.ndarray], feature: int, context: int, n: int | None = None) -> list[int]:
    """The distinct sample blocks of the feature's top-activating positions, strongest first (at most `n`)."""
    blocks = list(dict.fromkeys(int(r) // context for r in stats["top_rows"][feature] if r >= 0))
    return blocks if n is None else blocks[:n]


def block_activations(csc: sp.csc_matrix, feature: int, start: int, stop: int) -> np.ndarray:
    """The feature's activations on positions start..stop-1, from CSC activations with sorted indices."""
    return windows_activations(csc, feature, [start], stop - start)[0]


def windows_activations(csc: sp.csc_matrix, feature: int, starts: list[int], length: int) -> np.ndarray:
    """The feature's activations on positions start..start+length-1 for each start: [len(starts), length]
    float32, from CSC activations with sorted indices (the column sliced once, one search for all)."""
    rows = csc.indices[csc.indptr[feature]:csc.indptr[feature + 1]]
    vals = csc.data[csc.indptr[feature]:csc.indptr[feature + 1]]
    starts = np.asarray(starts, dtype=np.int64)
    bounds = np.searchsorted(rows, np.concatenate([starts, starts + length]))
    out = np.zeros((len(starts), length), dtype=np.float32)
    for i, start in enumerate(starts):
        a, b = bounds[i], bounds[i + len(starts)]
        out[i, rows[a:b] - start] = vals[a:b]
    return out


def load_feature_stats(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
