"""Sparsity mechanisms: from pre-activations to sparse features, whatever computed the pre-activations.

Every function here takes pre-activations `pre` [..., d_sae] (an SAE's ``x @ W_enc + b_enc``, or a
crosscoder's sum of encoders over several models) and knows nothing of encoders or decoders, so that
any dictionary shape can use them (featureflow.sae.architectures for SAEs):

- `topk_relu`:       the k largest per row, ReLU'd (Gao et al. 2024);
- `batch_topk_relu`: the k x rows largest over the whole batch, ReLU'd (Bussmann et al. 2024);
- `jump_relu` / `step`: JumpReLU with a per-latent threshold and its L0, both with the
  straight-through estimator of Rajamanoharan et al. 2024 (rectangle kernel of width `bandwidth`);
- `threshold_relu`:  inference JumpReLU, ReLU(pre) where pre > threshold (SAELens' jumprelu encode;
  BatchTopK SAEs are saved as it with a global threshold);
- `auxk_loss`:       TopK's auxiliary loss on dead latents (Gao et al. 2024, Appendix A.2).
"""

from __future__ import annotations

import torch


def topk_relu(pre: torch.Tensor, k: int) -> torch.Tensor:
    """ReLU of the k largest entries of every row of `pre`, zeros elsewhere (gradients reach the kept entries only)."""
    values, indices = torch.topk(pre, k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter(-1, indices, values.relu())


def batch_topk_relu(pre: torch.Tensor, k: int) -> torch.Tensor:
    """ReLU of the k x rows largest entries of the whole batch `pre` [..., d_sae], zeros elsewhere:
    k per row on average, more on some rows and fewer on others."""
    flat = pre.relu().flatten()
    values, indices = torch.topk(flat, min(flat.numel(), k * pre[..., 0].numel()), sorted=False)
    return torch.zeros_like(flat).scatter(-1, indices, values).reshape(pre.shape)


def threshold_relu(pre: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """ReLU(pre) where pre > threshold (per latent, broadcast over rows), 0 elsewhere: inference JumpReLU."""
    return pre.relu() * (pre > threshold).to(pre.dtype)


def rectangle(u: torch.Tensor) -> torch.Tensor:
    """The rectangle kernel: 1 on (-1/2, 1/2), else 0."""
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    """pre * H(pre - theta); d/dpre = H(pre - theta), d/dtheta = -(theta / eps) K((pre - theta) / eps) (eq. 11)."""

    @staticmethod
    def forward(ctx, pre, threshold, bandwidth):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        g_threshold = -(threshold / eps) * rectangle((pre - threshold) / eps) * grad
        return (pre > threshold).to(grad.dtype) * grad, g_threshold.reshape(-1, threshold.shape[-1]).sum(dim=0), None


class _Step(torch.autograd.Function):
    """H(pre - theta); no gradient to pre, d/dtheta = -(1 / eps) K((pre - theta) / eps) (eq. 12)."""

    @staticmethod
    def forward(ctx, pre, threshold, bandwidth):
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad):
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        g_threshold = -(1.0 / eps) * rectangle((pre - threshold) / eps) * grad
        return None, g_threshold.reshape(-1, threshold.shape[-1]).sum(dim=0), None


def jump_relu(pre: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """JumpReLU features of `pre` [..., d_sae] at per-latent `threshold` [d_sae] > 0, with the straight-through
    estimator of the threshold's gradient (Rajamanoharan et al. 2024, eq. 11)."""
    return _JumpReLU.apply(pre, threshold, bandwidth)


def step(pre: torch.Tensor, threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """H(pre - threshold) [..., d_sae]: summed over latents, the L0 whose gradient reaches the threshold only
    (Rajamanoharan et al. 2024, eq. 12)."""
    return _Step.apply(pre, threshold, bandwidth)


def min_positive(f: torch.Tensor) -> torch.Tensor:
    """The smallest positive entry of `f` (inf when there is none), without a device sync."""
    return torch.where(f > 0, f, torch.full_like(f, float("inf"))).min()


def auxk_loss(x_bar: torch.Tensor, residual: torch.Tensor, weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
              dead: torch.Tensor, aux_k: int) -> torch.Tensor:
    """AuxK (Gao et al. 2024, Appendix A.2): how well the top `aux_k` dead latents reconstruct the main
    reconstruction's `residual` [batch, d_in] (detached), as the mean squared error over elements.

    `x_bar` [batch, d_in] the encoder's input, `weights` (W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in]),
    `dead` [d_sae] bool. Only the dead latents' pre-activations are computed. With fewer dead latents than
    `aux_k`, all are used and the loss is scaled by their share of `aux_k` (as sparsify and SAELens do);
    0 (with a graph) when nothing is dead.
    """
    w_enc, b_enc, w_dec = weights
    idx = torch.nonzero(dead).flatten()
    if idx.numel() == 0:
        return (w_dec.sum() * 0.0).to(residual.dtype)
    pre = torch.addmm(b_enc[idx], x_bar, w_enc[:, idx])  # [batch, n_dead]
    k = min(aux_k, int(idx.numel()))
    recon = topk_relu(pre, k) @ w_dec[idx]  # no b_dec: the residual has it already
    return (recon - residual.detach()).pow(2).mean() * min(1.0, idx.numel() / aux_k)
