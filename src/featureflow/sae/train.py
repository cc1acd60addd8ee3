"""Train one SAE on a model's MLP activations (paper Appendix B), with checkpoint/resume.

Training data: blocks of `context_size` tokens sampled uniformly from the training splits of the
model's lineage corpora (its own and its ancestors'; paper footnote 5), turned into activations
chunk by chunk (`buffer_tokens` at a time, never more than training reads) and shuffled within the
chunk; one chunk is held at a time (its memory: featureflow.sae.memory). Chunks are a pure
function of (seed, model, chunk index), so a resumed run sees exactly the data it would have seen.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from featureflow.config import ConfigError
from featureflow.runtime import TrainingRun, pick_device, use_compile
from featureflow.sae.activations import activation_chunks
from featureflow.sae.architectures import get_architecture, log_fields
from featureflow.sae.blocks import BlockSource
from featureflow.sae.hooks import check_hook
from featureflow.sae.memory import chunk_batches, gpu_memory_mb, log_memory, sae_train_memory, stats_blocks
from featureflow.sae.model import SparseAutoencoder, saelens_cfg, save_sae
from featureflow.settings import Resources, SAESettings

log = logging.getLogger(__name__)
STATS_CHUNK = 10**6  # chunk index reserved for estimating the activation mean and scale


def lr_factor(step: int, steps: int, s: SAESettings) -> float:
    """The learning rate's factor at `step`: 1, then a final linear decay over `lr_decay_fraction` of the steps
    (the loss coefficients' schedules are the architecture's: Architecture.coefficient_values)."""
    decay_start = (1 - s.lr_decay_fraction) * steps
    return 1.0 if step < decay_start else max(0.0, (steps - step) / max(1.0, steps - decay_start))


@torch.no_grad()
def activation_stats(chunk: torch.Tensor, s: SAESettings) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, mean) from a sample of activations [n_tokens, d_in]."""
    scale = torch.tensor(1.0)
    if s.normalize == "unit_rms":
        scale = 1.0 / chunk.pow(2).mean().sqrt()
    mean = (chunk * scale).mean(dim=0) if s.subtract_mean else torch.zeros(chunk.shape[1], device=chunk.device)
    return scale, mean


@torch.no_grad()
def resample_dead(sae: SparseAutoencoder, opt: torch.optim.Adam, dead: torch.Tensor, x: torch.Tensor, x_hat: torch.Tensor,
                  seed: int) -> int:
    """Bricken et al.'s resampling: point each dead feature at an input the SAE reconstructs badly.

    Inputs are drawn with probability proportional to their squared reconstruction error; the dead
    feature's decoder row becomes the centred input direction, its encoder column the same
    direction scaled to 0.2 x the mean encoder norm of alive features, its bias 0, and its Adam
    moments are reset. `x_hat`: the architecture's reconstruction of the batch `x`. Returns the number of
    resampled features.
    """
    idx = torch.nonzero(dead).flatten()
    if idx.numel() == 0:
        return 0
    err = (x - x_hat).pow(2).sum(dim=1)
    gen = torch.Generator().manual_seed(seed)
    pick = torch.multinomial(err.cpu() + 1e-12, idx.numel(), replacement=True, generator=gen)
    dirs = torch.nn.functional.normalize(x[pick] - sae.mean - sae.b_dec, dim=1)  # [n_dead, d_in]
    alive = ~dead
    enc_norm = sae.W_enc[:, alive].norm(dim=0).mean() if alive.any() else torch.tensor(1.0)
    sae.W_dec[idx] = dirs
    sae.W_enc[:, idx] = dirs.T * 0.2 * enc_norm
    sae.b_enc[idx] = 0.0
    for param, index in ((sae.W_dec, (idx,)), (sae.W_enc, (slice(None), idx)), (sae.b_enc, (idx,))):
        state = opt.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][index] = 0.0
    return int(idx.numel())


def with_measured_k(s: SAESettings, metrics_json: str | Path) -> SAESettings:
    """`s` with its unset TopK `k` (None) set to the mean L0 in an SAE's metrics.json, rounded (at least 1):
    the architectures experiment matches sparsity so."""
    import dataclasses

    if s.options.get("k", 0) is not None:
        return s
    l0 = float(json.loads(Path(metrics_json).read_text())["l0"])
    k = max(1, round(l0))
    log.info("k = %d: the mean L0 %.2f of the SAE measured in %s", k, l0, metrics_json)
    return dataclasses.replace(s, options={**s.options, "k": k})


def check_sizes(s: SAESettings, d_sae: int, name: str) -> None:
    """Refuse, before any training, a TopK `k` or `aux_k` that the SAE of model `name` (d_sae latents) cannot have."""
    k, aux_k = s.options.get("k"), s.options.get("aux_k")
    if k is not None and k >= d_sae:
        raise ConfigError(f"config key 'sae.k': {k} latents per token, but the SAE of model '{name}' has {d_sae} (k < d_sae)")
    if aux_k is not None and aux_k > d_sae:
        raise ConfigError(f"config key 'sae.aux_k': {aux_k} dead latents, but the SAE of model '{name}' has {d_sae} (aux_k <= d_sae)")


def _zero_sums(terms: tuple[str, ...], dev: torch.device) -> dict:
    return {**{k: torch.zeros((), dtype=torch.float64, device=dev) for k in terms}, "n": 0}


@dataclass(frozen=True)
class SAEFiles:
    """One SAE job's paths: the LM folder and token files in, SAE folder, log and checkpoints out."""

    model_dir: str | Path
    token_files: list[str | Path]
    out_dir: str | Path
    train_log: str | Path
    ckpt_dir: str | Path


def train_sae(name: str, files: SAEFiles, settings: SAESettings, seed: int, resources: Resources) -> dict[str, Any]:
    """Train the SAE of model `name` on activations of the model in `files.model_dir` over `files.token_files`.

    Saves it in SAELens layout to `files.out_dir`, the per-step log to `files.train_log` (as training
    goes); resumes from `files.ckpt_dir`.
    """
    from featureflow.lm import lm_shape, load_for_inference

    torch.set_num_threads(resources.threads)
    s, hook_name = settings, settings.hook
    model_dir, token_files, ckpt_dir = files.model_dir, files.token_files, files.ckpt_dir
    dev = pick_device(resources.device)
    arch = get_architecture(s.architecture)
    arch_config = arch.config(s)  # its own keys, typed once: coefficient_values runs every step
    logged = ("loss", *arch.logged_terms)  # averaged over the steps between two log rows
    lm = load_for_inference(model_dir).to(dev)
    check_hook(lm, hook_name, name)
    source = BlockSource(token_files, s.context_size, seed, name)
    batch_tokens = s.batch_blocks * s.context_size
    steps = max(1, math.ceil(s.tokens / batch_tokens))
    chunk_blocks = chunk_batches(s) * s.batch_blocks
    chunk_tokens = chunk_blocks * s.context_size
    memory = sae_train_memory(s, lm_shape(lm.config), dev.type, sum(Path(f).stat().st_size for f in token_files))
    log_memory(name, memory, resources.mem_mb, gpu_memory_mb(dev))

    stats_sample = next(activation_chunks(lm, source, hook_name, stats_blocks(s), STATS_CHUNK))
    scale, mean = activation_stats(stats_sample, s)
    d_in = stats_sample.shape[1]
    del stats_sample  # not held through training
    sae = SparseAutoencoder(d_in, d_in * s.expansion_factor, seed).to(dev)
    check_sizes(s, sae.d_sae, name)
    arch.init_state(sae, arch_config)
    sae.scale.copy_(scale)
    sae.mean.copy_(mean)
    compiled = use_compile(resources.compile, dev)
    opt = torch.optim.Adam(sae.parameters(), lr=s.lr, betas=s.betas, fused=compiled and dev.type == "cuda")
    # compiled: the coefficients go in as tensors, or every new warm-up value would recompile
    step_terms = torch.compile(arch.loss_terms) if compiled else arch.loss_terms
    log.info("%s: %d steps of %d tokens on %s (torch.compile %s)", name, steps, batch_tokens, dev,
             "on, fused Adam" if compiled else "off")
    since_fired = torch.zeros(sae.d_sae, dtype=torch.long, device=dev)  # tokens since each feature last fired
    fingerprint = json.dumps({"settings": s.recipe(), "seed": seed, "model": str(model_dir), "hook": hook_name,
                              "data": [str(f) for f in token_files]}, sort_keys=True)
    run = TrainingRun(f"sae {name}", ckpt_dir, fingerprint, steps, s.checkpoint_every)
    state = run.resume()
    if state is not None:
        sae.load_state_dict(state["sae"])
        opt.load_state_dict(state["optimizer"])
        since_fired = state["since_fired"].to(dev)
    start = run.start

    autocast = torch.autocast(dev.type, dtype=torch.bfloat16) if s.bf16 or dev.type == "cuda" else contextlib.nullcontext()
    chunks = activation_chunks(lm, source, hook_name, chunk_blocks, first_chunk=start * batch_tokens // chunk_tokens)
    chunk, chunk_id = None, -1
    # Running sums stay on the device (float64, as Python floats were) and are read at log steps
    # only: a .item() per step would wait for the GPU every step.
    sums = _zero_sums(logged, dev)
    if state is not None and "log_window" in state:  # the steps since the last log row, so a resumed run logs the same rows
        sums = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in state["log_window"].items()}
    run.open_log(files.train_log, log_fields(arch), resources.tensorboard)
    for step in run.steps():
        position = step * batch_tokens
        if position // chunk_tokens != chunk_id:
            chunk = None  # drop the spent chunk before the next one is made: one chunk in memory, not two
            chunk, chunk_id = next(chunks), position // chunk_tokens
        offset = position % chunk_tokens
        x = chunk[offset:offset + batch_tokens] * sae.scale
        lr = s.lr * lr_factor(step, steps, s)
        for group in opt.param_groups:
            group["lr"] = lr
        coefficients = arch.coefficient_values(step, steps, arch_config)
        with autocast:
            terms = step_terms(sae, x, {k: torch.tensor(v, device=dev) for k, v in coefficients.items()} if compiled else coefficients,
                               arch_config)
            if arch.uses_aux_loss:
                terms["aux"] = arch.aux_loss(sae, x, terms, since_fired > s.dead_window_tokens, arch_config)
                terms["loss"] = terms["loss"] + terms["aux"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        sae.remove_parallel_grad()
        opt.step()
        sae.normalise_decoder()
        with torch.no_grad():
            arch.after_step(sae, terms, arch_config)
        fired = (terms["f"] > 0).any(dim=0)
        since_fired += batch_tokens
        since_fired.masked_fill_(fired, 0)  # not since_fired[fired] = 0: boolean indexing waits for the GPU
        if s.resample_dead_every and (step + 1) % s.resample_dead_every == 0:
            dead = since_fired > s.dead_window_tokens
            with torch.no_grad():
                x_hat = sae.decode(arch.loss_terms(sae, x, coefficients, arch_config)["f"])
            n = resample_dead(sae, opt, dead.to(dev), x, x_hat, seed + step)
            since_fired[dead] = 0
            log.info("step %d: resampled %d dead features", step + 1, n)
        for k in logged:
            sums[k] += terms[k].detach().double()
        sums["n"] += 1
        done = step + 1
        if done % s.log_every == 0 or done == steps:
            n = sums.pop("n")
            row = {"step": done, "tokens": done * batch_tokens, **{k: round(v.item() / n, 6) for k, v in sums.items()},
                   "dead_fraction": round((since_fired > s.dead_window_tokens).float().mean().item(), 5),
                   "lr": lr, **{f"{k}_coefficient": v for k, v in coefficients.items()}}
            run.log(row)
            run.bar.set_postfix(mse=f"{row['mse']:.4f}", l0=f"{row['l0']:.1f}", dead=row["dead_fraction"])
            sums = _zero_sums(logged, dev)
        if run.checkpoint_due(done):
            run.save_checkpoint(done, {"sae": sae.state_dict(), "optimizer": opt.state_dict(), "since_fired": since_fired.cpu(),
                                       "log_window": {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in sums.items()}})

    sae.to("cpu")
    cfg = saelens_cfg(sae, name, hook_name, s.context_size, ",".join(str(f) for f in token_files),
                      {"architecture": arch.saved_name, **arch.cfg_keys(s)})
    extra = {"model": name, "model_dir": str(model_dir), "settings": s.recipe(), "seed": seed, "steps": steps,
             "activation_scale": float(sae.scale), "activation_mean_folded_into": "b_enc",
             "scale_folded_into": "W_enc (x c), W_dec and b_dec (/ c)",
             "train_seconds": round(run.elapsed(), 2), "resumed_from_step": start,
             "device": str(dev), "compiled": compiled}
    save_sae(sae, files.out_dir, cfg, extra, arch.saved_tensors(sae))
    run.finish(s.keep_checkpoints)  # after the SAE is saved: a job killed before keeps its checkpoints
    return extra
