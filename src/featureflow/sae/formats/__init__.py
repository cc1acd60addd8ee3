"""SAE file formats featureflow imports, one module each: SAELens, EleutherAI sparsify,
saprmarks/dictionary_learning, Gemma Scope.

Each module has `NAME`, `FILES` (the files it reads, fetched from the hub), `detect(folder)` (2: its
weights file is there; 1: only its settings file; 0: not its folder) and `read(Source) -> ReadSAE`,
which reads, checks against the run's hook and width, and folds the source's encode into one of
featureflow's registered architectures exactly (featureflow.sae.formats.common). Adding a format:
a module here, one entry in FORMATS, its name in the schema's `models.*.sae.format` enum, its tests.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from featureflow.config import ConfigError
from featureflow.sae.formats import dictionary_learning, gemma_scope, saelens, sparsify
from featureflow.sae.formats.common import ReadSAE, Source

FORMATS: dict[str, ModuleType] = {m.NAME: m for m in (saelens, sparsify, dictionary_learning, gemma_scope)}
FILES: tuple[str, ...] = tuple(dict.fromkeys(f for m in FORMATS.values() for f in m.FILES))
WHAT = ("SAELens cfg.json + sae_weights.safetensors, sparsify cfg.json + sae.safetensors, "
        "dictionary_learning ae.pt + config.json, Gemma Scope params.npz")


def _subfolders_with_saes(folder: Path) -> list[str]:
    found = [p.name for p in sorted(folder.iterdir()) if p.is_dir() and any(m.detect(p) == 2 for m in FORMATS.values())]
    return found[:6] + (["..."] if len(found) > 6 else [])


def choose_format(folder: Path, at: str, name: str | None = None) -> ModuleType:
    """The format module `name` names, or with "auto" (or None) the one whose files `folder` holds; one line
    naming the folder when none or several match."""
    if name not in (None, "auto"):
        if name not in FORMATS:
            raise ConfigError(f"{at}: format '{name}' is not one featureflow reads (known: auto, {', '.join(FORMATS)})")
        return FORMATS[name]
    scores = {n: m.detect(folder) for n, m in FORMATS.items()}
    best = max(scores.values())
    chosen = [n for n, s in scores.items() if s == best]
    if best == 0:
        inside = _subfolders_with_saes(folder)
        hint = (f"; its subfolders {', '.join(inside)} hold SAEs (a sparsify checkpoint keeps one per hookpoint): "
                "set `path` to one") if inside else ""
        found = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "nothing"
        raise ConfigError(f"{at}: no SAE files featureflow reads in '{folder}' (found: {found}; it reads {WHAT}){hint}")
    if len(chosen) > 1:
        raise ConfigError(f"{at}: '{folder}' holds the files of {' and '.join(chosen)} SAEs; set `format` to one of them")
    return FORMATS[chosen[0]]


__all__ = ["FILES", "FORMATS", "ReadSAE", "Source", "choose_format"]
