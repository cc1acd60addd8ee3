"""Merge methods: SLERP (default), linear, TIES, in a registry that new methods join.

t semantics, everywhere in this package: t = 0 gives the FIRST model listed in ``merge:``, t = 1 the
second. SLERP follows mergekit: each tensor is one vector, the angle comes from the normalised
vectors, the raw tensors are interpolated, and nearly colinear pairs (|cos| > 0.9995) fall back to
linear interpolation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from featureflow.config import ConfigError

log = logging.getLogger(__name__)
Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class MergeMethod:
    name: str
    fn: Callable[..., Tensors]
    needs_base: bool
    reference_url: str


METHODS: dict[str, MergeMethod] = {}


def register(method: MergeMethod) -> None:
    if method.name in METHODS:
        raise ValueError(f"merge method {method.name!r} is registered twice")
    METHODS[method.name] = method


def slerp_tensor(t: float, v0: torch.Tensor, v1: torch.Tensor, dot_threshold: float = 0.9995, eps: float = 1e-8) -> torch.Tensor:
    """Spherical interpolation of two tensors treated as single vectors (fp32 math, input dtype out)."""
    dtype = torch.float64 if v0.dtype == torch.float64 else torch.float32
    a, b = v0.to(dtype), v1.to(dtype)
    na, nb = torch.linalg.vector_norm(a), torch.linalg.vector_norm(b)
    dot = ((a / (na if na > eps else 1)) * (b / (nb if nb > eps else 1))).sum().clamp(-1, 1)
    if dot.abs() > dot_threshold:
        c0, c1 = 1 - t, t
    else:  # coefficients first: at t = 0 or 1 they are exactly 1 and 0, so the endpoints are the inputs
        theta = torch.acos(dot)
        c0, c1 = torch.sin((1 - t) * theta) / torch.sin(theta), torch.sin(t * theta) / torch.sin(theta)
    return (c0 * a + c1 * b).to(v0.dtype)


def slerp(first: Tensors, second: Tensors, t: float, base: Tensors | None = None) -> Tensors:
    return {k: slerp_tensor(t, first[k], second[k]) for k in first}


def linear(first: Tensors, second: Tensors, t: float, base: Tensors | None = None) -> Tensors:
    return {k: ((1 - t) * first[k].float() + t * second[k].float()).to(first[k].dtype) for k in first}


def ties(first: Tensors, second: Tensors, t: float, base: Tensors | None = None, density: float = 0.2) -> Tensors:
    """TIES-merging (Yadav et al. 2023) of two task vectors against their common ancestor.

    Each task vector keeps its top `density` share of entries by magnitude; signs are elected by the
    weighted sum (weights 1 - t and t); agreeing entries are averaged by weight and added to the base.
    """
    assert base is not None, "ties needs the common ancestor"
    out = {}
    for k in first:
        deltas, weights = [], torch.tensor([1 - t, t], dtype=torch.float32)
        for model in (first, second):
            d = (model[k].float() - base[k].float()).flatten()
            keep = max(1, int(round(density * d.numel())))
            threshold = d.abs().kthvalue(d.numel() - keep + 1).values if keep < d.numel() else -1.0
            deltas.append(torch.where(d.abs() >= threshold, d, torch.zeros_like(d)))
        stacked = torch.stack(deltas)  # [2, n]
        weighted = stacked * weights[:, None]
        sign = torch.sign(weighted.sum(0))
        agree = (torch.sign(stacked) == sign) & (stacked != 0)
        w_agree = (weights[:, None] * agree).sum(0)
        merged = (weighted * agree).sum(0) / torch.where(w_agree > 0, w_agree, torch.ones_like(w_agree))
        out[k] = (base[k].float() + merged.reshape(base[k].shape)).to(base[k].dtype)
    return out


register(MergeMethod("slerp", slerp, False, "https://en.wikipedia.org/wiki/Slerp"))
register(MergeMethod("linear", linear, False, "https://arxiv.org/abs/2203.05482"))
register(MergeMethod("ties", ties, True, "https://arxiv.org/abs/2306.01708"))


def merge_weights(method: str, first: Tensors, second: Tensors, t: float, base: Tensors | None = None) -> Tensors:
    """Merge two state dicts with the named method at fraction t (0 = first, 1 = second)."""
    if not 0.0 <= t <= 1.0:
        raise ConfigError(f"merge fraction t={t} is outside [0, 1]")
    if method not in METHODS:
        raise ConfigError(f"merge method {method!r} is not one of: {', '.join(METHODS)}")
    if METHODS[method].needs_base and base is None:
        raise ConfigError(f"merge method {method!r} needs the inputs' common ancestor as base")
    return METHODS[method].fn(first, second, t, base=base)
