"""The SAE's training forward and backward on the CPU, skipping the zeros of the features f.

With L0 ~ 30 of 2048 features, four of the five matrix products of a dense step (the decoder
forward, both decoder gradients and the encoder's weight gradient) multiply mostly zeros. Here
only the encoder forward stays dense; the others run on the nonzeros of f (CSR), and the L1 term's
gradient arrives per row (f >= 0, so sum |f| = sum f) instead of as a dense [batch, d_sae] tensor.
Early in training, when many features fire, the same function takes dense products instead
(above `DENSE_ABOVE`). The gradients are those of the dense step up to float rounding (tested).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

# torch warns once per process that CSR is beta; the products used here are tested against dense ones
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
DENSE_ABOVE = 0.1  # share of nonzero features above which dense products are faster (2-core CPU)


def _csr(crow: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    return torch.sparse_csr_tensor(crow, cols, vals, shape, check_invariants=False)


def _crow(index: torch.Tensor, n: int) -> torch.Tensor:
    crow = torch.zeros(n + 1, dtype=torch.long)
    crow[1:] = torch.bincount(index, minlength=n).cumsum(0)
    return crow


class _SAEStep(torch.autograd.Function):
    """(x_bar, W_enc, b_enc, W_dec, b_dec, select) -> (x_hat, f, sum of f per row); f carries no gradient.
    `select` (None: keep all) zeroes entries of the ReLU'd pre-activations (TopK): the kept ones pass
    their gradient as they are, so the backward is the same."""

    @staticmethod
    def forward(ctx, x_bar, W_enc, b_enc, W_dec, b_dec, select):  # noqa: N803 (the paper's names)
        f = torch.relu(torch.addmm(b_enc, x_bar, W_enc))
        if select is not None:
            f = select(f)
        batch, d_sae = f.shape
        ctx.mark_non_differentiable(f)
        ctx.sparse = int(torch.count_nonzero(f)) <= DENSE_ABOVE * f.numel()
        if not ctx.sparse:
            ctx.save_for_backward(x_bar, W_enc, W_dec, f)
            return torch.addmm(b_dec, f, W_dec), f, f.sum(dim=1)
        rows, cols = f.nonzero(as_tuple=True)
        vals = f[rows, cols]
        crow = _crow(rows, batch)
        x_hat = torch.addmm(b_dec, _csr(crow, cols, vals, (batch, d_sae)), W_dec) if vals.numel() else b_dec.expand(batch, -1).clone()
        by_col = torch.argsort(cols * batch + rows)  # f's nonzeros in the order of f transposed (CSR of [d_sae, batch])
        ctx.save_for_backward(x_bar, W_enc, W_dec, crow, cols, rows, vals, by_col, _crow(cols, d_sae))
        return x_hat, f, f.sum(dim=1)

    @staticmethod
    def backward(ctx, g_x_hat, _g_f, g_l1):
        g_x_hat = g_x_hat.contiguous()
        if not ctx.sparse:
            x_bar, W_enc, W_dec, f = ctx.saved_tensors  # noqa: N806
            g_pre = (torch.addmm(g_l1.unsqueeze(1), g_x_hat, W_dec.T)) * (f > 0)
            g_x_bar = g_pre @ W_enc.T if ctx.needs_input_grad[0] else None
            return g_x_bar, x_bar.T @ g_pre, g_pre.sum(dim=0), f.T @ g_x_hat, g_x_hat.sum(dim=0), None
        x_bar, W_enc, W_dec, crow, cols, rows, vals, by_col, crow_t = ctx.saved_tensors  # noqa: N806
        batch, d_sae = x_bar.shape[0], W_enc.shape[1]
        # dL/dpre on the nonzeros of f: the L1 row gradient plus (g_x_hat @ W_dec^T) sampled there
        g_pre = torch.sparse.sampled_addmm(_csr(crow, cols, g_l1[rows], (batch, d_sae)), g_x_hat, W_dec.T).values()
        rows_t = rows[by_col]
        g_W_dec = _csr(crow_t, rows_t, vals[by_col], (d_sae, batch)) @ g_x_hat        # noqa: N806
        g_W_enc = (_csr(crow_t, rows_t, g_pre[by_col], (d_sae, batch)) @ x_bar).T     # noqa: N806
        g_b_enc = torch.zeros(d_sae, dtype=vals.dtype).index_add_(0, cols, g_pre)
        g_x_bar = _csr(crow, cols, g_pre, (batch, d_sae)) @ W_enc.T if ctx.needs_input_grad[0] else None
        return g_x_bar, g_W_enc, g_b_enc, g_W_dec, g_x_hat.sum(dim=0), None


def sparse_step_applies(x: torch.Tensor) -> bool:
    """Whether a training step on the batch `x` takes this module's step: CPU float32 with gradients, eager
    (CUDA, autocast and compiled graphs, which fuse the dense products, take the dense one)."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu") and not torch.compiler.is_compiling())


def sae_step_forward(x_bar: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor,  # noqa: N803
                     b_dec: torch.Tensor, select: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_hat, f, sum of f per row) of the SAE on centred inputs x_bar [batch, d_in], CPU float32; `select`
    keeps some of the ReLU'd pre-activations (featureflow.sae.sparsity's TopKs; None: all)."""
    return _SAEStep.apply(x_bar, W_enc, b_enc, W_dec, b_dec, select)
