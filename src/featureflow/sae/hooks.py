"""Activation sites of Hugging Face causal LMs, named as in TransformerLens.

Supported hook names (L: a layer index, counted from 0)::

    blocks.L.mlp.hook_post      the MLP's hidden activation after its nonlinearity (and gate):
                                the input of the MLP's output projection        [batch, pos, d_mlp]
    blocks.L.hook_mlp_out       the output of the MLP's output projection       [batch, pos, d_model]
    blocks.L.hook_resid_post    the hidden state block L outputs (before any final norm)
                                                                                [batch, pos, d_model]

Where each site lives in a model depends on its family (the config's ``model_type``): the table of
families is the LM stage's (featureflow.lm.families.FAMILIES), and a new family is one more entry there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from featureflow.config import ConfigError
from featureflow.lm import Family, config_name, family_of

HOOK_PATTERN = re.compile(r"^blocks\.(\d+)\.(mlp\.hook_post|hook_mlp_out|hook_resid_post)$")
SUPPORTED = "blocks.<layer>.mlp.hook_post, blocks.<layer>.hook_mlp_out, blocks.<layer>.hook_resid_post"
MLP_POST, MLP_OUT, RESID_POST = "mlp.hook_post", "hook_mlp_out", "hook_resid_post"


@dataclass(frozen=True)
class _Hook:
    family: Family
    layer: int
    site: str  # MLP_POST, MLP_OUT or RESID_POST


class _StopForward(Exception):
    pass


def _resolve(config: Any, hook_name: str, model_name: str) -> _Hook:
    family = family_of(config, model_name, hook_name)
    match = HOOK_PATTERN.match(hook_name)
    n_layers = config.num_hidden_layers
    if not match or int(match.group(1)) >= n_layers:
        layers = f"{n_layers} layer" + ("" if n_layers == 1 else "s")
        raise ConfigError(f"model {model_name!r} has no hook {hook_name!r} ({layers}; supported: {SUPPORTED})")
    return _Hook(family, int(match.group(1)), match.group(2))


def _site(model: torch.nn.Module, hook_name: str) -> tuple[_Hook, torch.nn.Module]:
    """The resolved hook and the module whose input (mlp.hook_post) or output (the others) it is."""
    hook = _resolve(model.config, hook_name, config_name(model.config))
    block = model.get_submodule(f"{hook.family.blocks}.{hook.layer}")
    return hook, block if hook.site == RESID_POST else block.get_submodule(hook.family.out_proj)


def _hidden(output: Any) -> torch.Tensor:
    # a block returns its hidden state alone or first in a tuple (attention weights, caches), by family and version
    return output[0] if isinstance(output, tuple) else output


def check_hook(model: Any, hook_name: str, model_name: str) -> None:
    """Raise a one-line ConfigError naming `model_name` and the hook when `model` (or its config) has no `hook_name`."""
    _resolve(getattr(model, "config", model), hook_name, model_name)


def hook_width(config: Any, hook_name: str, model_name: str) -> int:
    """The width of the activations at `hook_name` (an SAE's d_in) from a transformers config alone."""
    hook = _resolve(config, hook_name, model_name)
    return hook.family.d_mlp(config) if hook.site == MLP_POST else config.hidden_size


@torch.no_grad()
def hook_activations(model: torch.nn.Module, input_ids: torch.Tensor, hook_name: str) -> torch.Tensor:
    """Activations at `hook_name` for a [batch, pos] token tensor: [batch, pos, width] (float32).

    The forward pass stops at the hook, so the rest of the model (and the unembedding) does not run.
    """
    hook, module = _site(model, hook_name)
    captured: dict[str, torch.Tensor] = {}

    def grab_input(module, args):  # noqa: ANN001 - torch hook signature
        captured["acts"] = args[0]
        raise _StopForward

    def grab_output(module, args, output):  # noqa: ANN001 - torch hook signature
        captured["acts"] = _hidden(output)
        raise _StopForward

    if hook.site == MLP_POST:
        handle = module.register_forward_pre_hook(grab_input)
    else:
        handle = module.register_forward_hook(grab_output)
    try:
        model(input_ids=input_ids)
    except _StopForward:
        pass
    finally:
        handle.remove()
    return captured["acts"].float()


@contextmanager
def spliced(model: torch.nn.Module, hook_name: str,
            fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, forward passes of `model` go on with `fn(acts)` in place of the activations at `hook_name`."""
    hook, module = _site(model, hook_name)

    def replace_input(module, args):  # noqa: ANN001 - torch hook signature
        return (fn(args[0]), *args[1:])

    def replace_output(module, args, output):  # noqa: ANN001 - torch hook signature
        return (fn(output[0]), *output[1:]) if isinstance(output, tuple) else fn(output)

    if hook.site == MLP_POST:
        handle = module.register_forward_pre_hook(replace_input)
    else:
        handle = module.register_forward_hook(replace_output)
    try:
        yield
    finally:
        handle.remove()


def output_map(model: torch.nn.Module, hook_name: str) -> torch.Tensor:
    """The linear map [d_model, width] from the activations at `hook_name` into the residual stream
    (the MLP's output projection without its bias for mlp.hook_post; the identity for the others)."""
    hook, module = _site(model, hook_name)
    if hook.site != MLP_POST:
        ref = model.get_output_embeddings().weight
        return torch.eye(model.config.hidden_size, dtype=ref.dtype, device=ref.device)
    weight = module.weight.detach()
    return weight.T if hook.family.conv1d else weight


def final_norm(model: torch.nn.Module) -> torch.nn.Module:
    """The norm between the last block and the unembedding (RMSNorm, or a LayerNorm for gpt2 and gpt_neox)."""
    return model.get_submodule(family_of(model.config, config_name(model.config)).final_norm)
