"""SAE quality on held-out tokens: L0, MSE, explained variance, explained loss, dead/dense features.

Explained loss splices the SAE reconstruction into the LM in place of the activations at the
SAE's hook (featureflow.sae.hooks) and compares the LM's cross-entropy with two references: the
clean model, and the model with the hook's activations zero-ablated (replaced by zeros; at
``mlp.hook_post`` the MLP then adds only its output bias, nothing in Mistral, whose
``down_proj`` has none)::

    explained_loss = (CE_zero_ablated - CE_with_sae) / (CE_zero_ablated - CE_clean)

Writes ``results/sae/{model}/metrics.json`` and a feature-density histogram.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featureflow.context import check_model_context
from featureflow.paper import SAE_TARGETS
from featureflow.paths import SAE_EXTRA
from featureflow.runtime import pick_device
from featureflow.sae.hooks import check_hook, spliced
from featureflow.sae.memory import gpu_memory_mb, log_memory, sae_eval_memory
from featureflow.sae.saved import load_sae
from featureflow.settings import Resources

log = logging.getLogger(__name__)
DENSE_THRESHOLD = 0.1  # a feature firing on more than 10% of tokens counts as dense


@torch.no_grad()
def _ce(model: torch.nn.Module, ids: torch.Tensor) -> float:
    logits = model(input_ids=ids).logits  # [batch, pos, vocab]
    shifted = logits[:, :-1].float().reshape(-1, logits.shape[-1])  # a copy: the slice is not contiguous
    del logits  # so that the log-softmax is the second [batch, pos, vocab] tensor held, not the third
    return torch.nn.functional.cross_entropy(shifted, ids[:, 1:].reshape(-1), reduction="sum").item()


@torch.no_grad()
def evaluate_sae(model_dir: str | Path, sae_dir: str | Path, blocks: np.ndarray, hook_name: str, resources: Resources,
                 batch_size: int = 32) -> dict[str, Any]:
    """Metrics of the SAE in `sae_dir` on token blocks [n_blocks, pos] of held-out data (fp32 on any device);
    `batch_size` blocks at a time, fewer where their logits would pass featureflow.lm.evaluate.LOGITS_BUDGET."""
    from featureflow.lm import lm_shape, load_for_inference, logits_batch

    torch.set_num_threads(resources.threads)
    device = pick_device(resources.device)
    model = load_for_inference(model_dir).to(device)
    check_hook(model, hook_name, Path(model_dir).name)
    check_model_context(model.config, blocks.shape[1], Path(model_dir).name)
    batch_size = logits_batch(batch_size, blocks.shape[1], model.config.vocab_size)
    sae = load_sae(sae_dir).to(device)
    memory = sae_eval_memory(sae.W_dec.shape[0], lm_shape(model.config), blocks.shape[1], batch_size, device.type)
    log_memory(str(sae_dir), memory, resources.mem_mb, gpu_memory_mb(device))
    scale = json.loads((Path(sae_dir) / SAE_EXTRA).read_text())["activation_scale"]
    mode: dict[str, str] = {"now": "clean"}
    store: dict[str, torch.Tensor] = {}

    def splice(x: torch.Tensor) -> torch.Tensor:
        if mode["now"] == "clean":
            store["x"] = x.detach().flatten(0, 1)
            return x
        if mode["now"] == "zero":
            return torch.zeros_like(x)
        f = sae.encode(x)
        store["f"] = f.flatten(0, 1)
        return sae.decode(f)

    ce = {"clean": 0.0, "zero": 0.0, "sae": 0.0}
    n_pred, n_tok, sq_err, l0_sum = 0, 0, 0.0, 0.0
    fired = torch.zeros(sae.W_dec.shape[0], dtype=torch.long, device=device)
    xs_sum, xs_sq = None, None
    with spliced(model, hook_name, splice):
        for start in range(0, len(blocks), batch_size):
            ids = torch.from_numpy(np.asarray(blocks[start:start + batch_size], dtype=np.int64)).to(device)
            for m in ("clean", "zero", "sae"):
                mode["now"] = m
                ce[m] += _ce(model, ids)
            x, f = store["x"], store["f"]
            x_hat = sae.decode(f)
            sq_err += (x - x_hat).pow(2).sum().item()
            xs_sum = x.sum(0) if xs_sum is None else xs_sum + x.sum(0)
            xs_sq = x.pow(2).sum(0) if xs_sq is None else xs_sq + x.pow(2).sum(0)
            l0_sum += (f > 0).sum().item()
            fired += (f > 0).sum(0)
            n_tok += x.shape[0]
            n_pred += ids[:, 1:].numel()
            del x, f, x_hat
            store.clear()  # not held through the next batch's forward passes
    d_in = sae.W_dec.shape[1]
    total_var = (xs_sq - xs_sum.pow(2) / n_tok).sum().item()  # sum over tokens of ||x - mean||^2
    ce = {k: v / n_pred for k, v in ce.items()}
    density = (fired.float() / n_tok).cpu().numpy()
    mse = sq_err / (n_tok * d_in)
    return {
        "tokens": n_tok,
        "l0": l0_sum / n_tok,
        "mse": mse,
        "mse_normalised": mse * scale**2,
        "explained_variance": 1 - sq_err / total_var,
        "ce_clean": ce["clean"],
        "ce_zero_ablated": ce["zero"],
        "ce_with_sae": ce["sae"],
        "explained_loss": (ce["zero"] - ce["sae"]) / (ce["zero"] - ce["clean"]),
        "dead_fraction": float((density == 0).mean()),
        "dense_fraction": float((density > DENSE_THRESHOLD).mean()),
        "d_sae": int(density.size),
        "feature_density": density.tolist(),
    }


def density_histogram(metrics: dict[str, Any], title: str, out_html: str | Path, out_png: str | Path | None) -> None:
    """Histogram of log10 feature density (alive features), the usual SAE health plot."""
    import plotly.graph_objects as go

    from featureflow.plotting import save_figure

    density = np.asarray(metrics["feature_density"])
    alive = density[density > 0]
    fig = go.Figure(go.Histogram(x=np.log10(alive), nbinsx=60, marker={"color": "#1f77b4"}))
    fig.update_layout(title=f"{title}: feature density ({(density == 0).mean():.1%} dead, L0 {metrics['l0']:.1f})",
                      xaxis_title="log10(fraction of tokens on which the feature fires)", yaxis_title="features",
                      template="plotly_white")
    save_figure(fig, out_html, out_png)


def write_metrics(metrics: dict[str, Any], out_json: str | Path, out_density: str | Path) -> None:
    """The metrics (with the paper's targets) as JSON, and the per-feature density as .npy."""
    slim = {k: v for k, v in metrics.items() if k != "feature_density"}
    slim["paper_targets"] = SAE_TARGETS
    Path(out_json).write_text(json.dumps(slim, indent=2) + "\n")
    np.save(out_density, np.asarray(metrics["feature_density"], dtype=np.float32))


def held_out_blocks(token_files: list[str | Path], block_size: int, eval_tokens: int) -> np.ndarray:
    """Evaluation windows [n_blocks, block_size]: an equal share of `eval_tokens` from each file."""
    from featureflow.data import blocks_from_files

    return blocks_from_files(token_files, block_size, max(block_size, eval_tokens // len(token_files)))
