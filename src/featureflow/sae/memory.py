"""Peak memory of the SAE jobs, estimated from their settings and the LM's shape.

Each job logs its estimate when it starts and warns when it exceeds the job class's `mem_mb`
(docs/performance.md, "Memory of the SAE jobs", has the table for the demo and the paper). Numbers are float32
(4 bytes). The `sae` job (training) first samples activations for their scale and mean (at most
STATS_TOKENS, at most one chunk), holding that sample and one copy of it; it peaks either there or
while training, when it holds:

    activation buffer   chunk x d_in            one chunk of `buffer_tokens`, at most the tokens training reads
    SAE and Adam        4 x SAE parameters      weights, gradients, Adam's two moments
    training step       step_copies x batch x d_sae   pre-activations, features, masks, their gradient (the architecture's),
                        + INPUT_COPIES x batch x d_in  the batch, centred, reconstructed, the error, its gradient
    LM forward          the activations of one forward batch of blocks
    LM weights          embedding and unembedding (vocab x d_model each; one when tied) and the layers

and `sae_eval` holds the LM, the SAE's weights and, per batch of blocks, the logits twice (their
shifted copy and its log-softmax: batch x block x vocab each) and FEATURE_COPIES x batch x block
x d_sae of features. Both also hold the Python runtime (RUNTIME_MB, measured) and the pages of
the token files they read (memory-mapped; the kernel may drop them). On a GPU every tensor sits
in GPU memory; the host keeps the runtime (CUDA's libraries included), the LM while it loads, and
the token files' pages. d_in is taken as the LM's d_mlp (the width of mlp.hook_post; an upper bound
for the d_model-wide hooks of the usual LMs, whose d_mlp is larger).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from featureflow.lm import LMShape
from featureflow.sae.architectures import get_architecture
from featureflow.settings import SAESettings

log = logging.getLogger(__name__)
F32 = 4
MB = 2**20
STATS_TOKENS = 200_000  # activations sampled for their scale and mean before training
RUNTIME_MB = {"cpu": 400, "cuda": 3000}  # Python, torch and transformers loaded (CPU: 376 MB measured); CUDA's libraries
INPUT_COPIES = 5  # [batch, d_in] float tensors alive in one training step
FEATURE_COPIES = 2  # [tokens, d_sae] float tensors alive in one evaluation batch (the encoder's product and f)
FORWARD_BATCH = {"cpu": 256, "cuda": 4096}  # blocks per LM forward when making activations (activations.py)


def _forward_bytes(lm: LMShape, blocks: int, block: int) -> int:
    """Activations of one forward pass over [blocks, block] tokens, up to the MLP (attention scores included)."""
    return F32 * blocks * (block * (6 * lm.d_model + lm.mlp_matrices * lm.d_mlp) + lm.n_heads * block * block)


@dataclass(frozen=True)
class Estimate:
    """A job's estimated peak: {part: bytes} on the host and, on a GPU, in GPU memory."""

    job: str
    host: dict[str, int]
    device: dict[str, int] = field(default_factory=dict)

    @property
    def host_mb(self) -> float:
        return sum(self.host.values()) / MB

    @property
    def device_mb(self) -> float:
        return sum(self.device.values()) / MB

    def describe(self) -> str:
        def parts(d: dict[str, int]) -> str:
            return ", ".join(f"{k} {v / MB:,.0f}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]))

        text = f"{self.job}: estimated peak {self.host_mb:,.0f} MB host ({parts(self.host)})"
        if self.device:
            text += f"; {self.device_mb:,.0f} MB GPU ({parts(self.device)})"
        return text


def stats_blocks(s: SAESettings) -> int:
    """Blocks sampled for the activations' scale and mean: STATS_TOKENS worth, at most one chunk."""
    return min(chunk_batches(s) * s.batch_blocks, STATS_TOKENS // s.context_size + 1)


def chunk_batches(s: SAESettings) -> int:
    """Training batches per activation chunk: `buffer_tokens` worth, at most all the batches training takes."""
    batch_tokens = s.batch_blocks * s.context_size
    return min(max(1, s.buffer_tokens // batch_tokens), max(1, math.ceil(s.tokens / batch_tokens)))


def _split(job: str, parts: dict[str, int], device: str, token_bytes: int) -> Estimate:
    runtime = {"runtime": RUNTIME_MB["cuda" if device == "cuda" else "cpu"] * MB}
    mapped = {"token files (mapped)": token_bytes} if token_bytes else {}
    if device == "cuda":
        return Estimate(job, {**runtime, **mapped, "LM weights": parts["LM weights"]}, parts)
    return Estimate(job, {**runtime, **mapped, **parts})


def sae_train_memory(s: SAESettings, lm: LMShape, device: str, token_bytes: int = 0) -> Estimate:
    """The `sae` job's peak (see the module docstring): the larger of the scale/mean sample and training."""
    d_in, d_sae = lm.d_mlp, lm.d_mlp * s.expansion_factor
    batch = s.batch_blocks * s.context_size
    chunk = chunk_batches(s) * batch
    forward = FORWARD_BATCH["cuda" if device == "cuda" else "cpu"]
    sample = {"scale/mean sample (x2)": 2 * F32 * stats_blocks(s) * s.context_size * d_in}
    training = {
        "activation buffer": F32 * chunk * d_in,
        "SAE and Adam": 4 * F32 * (2 * d_in * d_sae + d_sae + d_in),
        "training step": F32 * batch * (get_architecture(s.architecture).step_copies * d_sae + INPUT_COPIES * d_in),
    }
    parts = {"LM weights": F32 * lm.params, "LM forward": _forward_bytes(lm, min(forward, chunk // s.context_size), s.context_size),
             **max(sample, training, key=lambda d: sum(d.values()))}
    return _split("sae", parts, device, token_bytes)


def sae_eval_memory(d_sae: int, lm: LMShape, block: int, batch_size: int, device: str, token_bytes: int = 0) -> Estimate:
    """The `sae_eval` job's peak for batches of `batch_size` blocks of `block` tokens."""
    tokens = batch_size * block
    parts = {
        "LM weights": F32 * lm.params,
        "LM forward": _forward_bytes(lm, batch_size, block),
        "SAE weights": F32 * (2 * lm.d_mlp * d_sae + d_sae + lm.d_mlp),
        "logits": 2 * F32 * tokens * lm.vocab,
        "features": FEATURE_COPIES * F32 * tokens * d_sae,
    }
    return _split("sae_eval", parts, device, token_bytes)


def log_memory(name: str, estimate: Estimate, mem_mb: int | None, gpu_mb: float | None = None) -> bool:
    """Log the estimate; warn when it exceeds the job class's `mem_mb` (or the GPU's memory). True when it fits."""
    log.info("%s %s; the job class has %s", name, estimate.describe(), f"{mem_mb:,} MB" if mem_mb else "no mem_mb")
    fits = True
    if mem_mb and estimate.host_mb > mem_mb:
        remedy = "raise resources.sae.mem_mb or lower sae.buffer_tokens" if estimate.job == "sae" else "raise resources.gpu_eval.mem_mb"
        log.warning("%s: the estimated peak (%s MB) exceeds the job class's mem_mb (%s MB): %s", name, f"{estimate.host_mb:,.0f}",
                    f"{mem_mb:,}", remedy)
        fits = False
    if gpu_mb and estimate.device_mb > gpu_mb:
        log.warning("%s: the estimated GPU memory (%s MB) exceeds the GPU's (%s MB)", name, f"{estimate.device_mb:,.0f}",
                    f"{gpu_mb:,.0f}")
        fits = False
    return fits


def gpu_memory_mb(device: Any) -> float | None:
    """The GPU's memory in MB (None on a CPU)."""
    import torch

    return torch.cuda.get_device_properties(device).total_memory / MB if device.type == "cuda" else None
