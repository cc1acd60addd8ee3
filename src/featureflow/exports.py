"""Lazy public API of the stage packages.

Each stage package (data, lm, merge, sae, flow) names its public functions in its ``__init__``;
other stages import only those (``from featureflow.lm import load_model``), never a stage's
modules. The import happens on first use, so a light job (classify) does not pay for the heavy
modules (torch, transformers) of a sibling it never calls.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """Module `__getattr__` and `__all__` for `package`, whose name `n` lives in module `exports[n]`."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return __getattr__, sorted(exports)
