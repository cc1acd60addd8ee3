"""Cross-field checks and config rewriting: what the schema cannot say about a config.

`check_config` refuses configs whose keys disagree with each other, the lineage or the disk, with one
line naming the key; `add_merge_variants` writes the merged models that `experiments.merge_methods` compares
into `models`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from featureflow.config import ConfigError
from featureflow.criteria import CRITERIA
from featureflow.lineage import Lineage
from featureflow.settings import sae_seed


def _check_controls(cfg: dict[str, Any], lineage: Lineage) -> None:
    controls = cfg["controls"]
    sae_seed = controls.get("sae_seed")
    if sae_seed is not None:
        for model in sae_seed["models"] or []:
            if model not in lineage.models:
                raise ConfigError(f"config key 'controls.sae_seed.models': '{model}' is not a model (known: {', '.join(lineage.order)})")
            if lineage.models[model].sae is not None:
                raise ConfigError(f"config key 'controls.sae_seed.models': '{model}' imports its SAE (models.{model}.sae); "
                                  "the seed ceiling repeats this run's SAE recipe, so it needs a model whose SAE is trained here")
        if sae_seed["seed"] == cfg["seed"]:
            raise ConfigError(f"config key 'controls.sae_seed.seed': {sae_seed['seed']} is the run's seed; the second SAEs "
                              "need another seed")
    criterion = CRITERIA[cfg["criterion"]]
    if isinstance(cfg["threshold"], str) and not criterion.correlations:
        raise ConfigError(f"config key 'threshold': {cfg['threshold']!r} is a threshold on activation correlations; "
                          f"criterion '{criterion.name}' needs a number")
    if isinstance(cfg["threshold"], str) and cfg["experiments"]["merge_path"]:
        raise ConfigError(f"config key 'experiments.merge_path' needs a numeric threshold (not {cfg['threshold']!r})")
    for key, what in (("widths", "width"), ("architectures", "architecture")):
        if isinstance(cfg["threshold"], str) and cfg["experiments"][key]:
            raise ConfigError(f"config key 'experiments.{key}' needs a numeric threshold (not {cfg['threshold']!r}): a null "
                              f"calibrated on one {what} says nothing of another")
        if not criterion.correlations and cfg["experiments"][key]:
            others = " or ".join(c.name for c in CRITERIA.values() if c.correlations)
            raise ConfigError(f"config key 'experiments.{key}' compares activation correlations; criterion '{criterion.name}' "
                              f"puts the threshold on {criterion.threshold} (use {others})")
    if isinstance(cfg["threshold"], str) and "shuffle" not in controls:
        raise ConfigError(f"config key 'threshold': {cfg['threshold']!r} needs the shuffle null (add controls: {{shuffle: {{}}}})")


def _check_sae_seeds(cfg: dict[str, Any], lineage: Lineage) -> None:
    """With `sae.seeds: per_model`, no two SAEs trained here start from one seed: the run's seed and the seed ceiling's
    never meet for one model (sae_seed is one-to-one in the seed), but two names' CRC-32s could bring them together."""
    if cfg["sae"]["seeds"] != "per_model":
        return
    control = cfg["controls"].get("sae_seed")
    bases = [("seed", cfg["seed"])] + ([("controls.sae_seed.seed", control["seed"])] if control is not None else [])
    seen: dict[int, str] = {}
    for name in lineage.order:
        if lineage.models[name].sae is not None:
            continue  # an imported SAE is not trained here
        for key, base in bases:
            seed, owner = sae_seed(base, name, "per_model"), f"{key} for '{name}'"
            if seed in seen:
                raise ConfigError(f"config key 'sae.seeds': per_model gives {owner} and {seen[seed]} the same SAE seed "
                                  f"({seed}); choose another {' or '.join(k for k, _ in bases)}")
            seen[seed] = owner


def _check_pretrained(cfg: dict[str, Any], lineage: Lineage, workdir: str | Path) -> None:
    """Local folders of pretrained models and SAEs exist (hub ids are checked when fetched); the common
    sample's corpora are corpora."""
    for name in lineage.order:
        m = lineage.models[name]
        for key, source in (("pretrained", m.pretrained), ("sae.pretrained", m.sae)):
            folder = source.local_folder(workdir) if source is not None else None
            if folder is None:
                continue
            if source.revision is not None:
                raise ConfigError(f"config key 'models.{name}.{key.replace('pretrained', 'revision')}' applies to hub ids "
                                  f"(owner/name); {source.source!r} is a local folder")
            if not folder.is_dir():
                raise ConfigError(f"config key 'models.{name}.{key}': {str(folder)!r} is neither a folder nor a hub id "
                                  "(owner/name)")
    for corpus in cfg["acts"].get("corpora") or []:
        if corpus not in cfg["corpora"]:
            raise ConfigError(f"config key 'acts.corpora': '{corpus}' is not a corpus (known: {', '.join(cfg['corpora'])})")


def _width_entries(cfg: dict[str, Any]) -> list[tuple[int, float | None]]:
    """`experiments.widths` as (factor, its own L1 coefficient or None for the lineage's), in config order."""
    return [(w["factor"], w["l1_coefficient"]) if isinstance(w, dict) else (w, None) for w in cfg["experiments"]["widths"]]


def width_l1_coefficients(cfg: dict[str, Any]) -> dict[int, float | None]:
    """`experiments.widths` as {factor: its own L1 coefficient, or None for the lineage's}."""
    return dict(_width_entries(cfg))


def _check_widths(cfg: dict[str, Any]) -> None:
    factors = [f for f, _ in _width_entries(cfg)]
    for f in factors:
        if factors.count(f) > 1:
            raise ConfigError(f"config key 'experiments.widths': x{f} is listed twice")
    arch = cfg["sae"]["architecture"]
    if arch != "standard" and any(l1 is not None for l1 in width_l1_coefficients(cfg).values()):
        raise ConfigError(f"config key 'experiments.widths': an entry sets l1_coefficient, which applies to architecture "
                          f"standard only, not to '{arch}' (sae.architecture)")
    own, l1 = cfg["sae"]["expansion_factor"], width_l1_coefficients(cfg).get(cfg["sae"]["expansion_factor"])
    if l1 is not None and l1 != cfg["sae"]["l1_coefficient"]:
        raise ConfigError(f"config key 'experiments.widths': x{own} is the lineage's own width, whose SAEs are reused; its "
                          f"L1 coefficient is sae.l1_coefficient ({cfg['sae']['l1_coefficient']}), not {l1}")


def architecture_entries(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`experiments.architectures` as {architecture: its own settings set in the entry}, in config order."""
    entries = [e if isinstance(e, dict) else {"architecture": e} for e in cfg["experiments"]["architectures"]]
    return {e["architecture"]: {k: v for k, v in e.items() if k != "architecture"} for e in entries}


def _check_architectures(cfg: dict[str, Any]) -> None:
    names = [e["architecture"] if isinstance(e, dict) else e for e in cfg["experiments"]["architectures"]]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"config key 'experiments.architectures': '{name}' is listed twice")
    own = cfg["sae"]["architecture"]
    settings = architecture_entries(cfg).get(own)
    if settings:
        raise ConfigError(f"config key 'experiments.architectures': '{own}' is the lineage's own architecture (sae.architecture), "
                          f"whose SAEs are reused; it cannot be listed with other settings ({', '.join(settings)})")


def merge_variants(cfg: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The siblings `experiments.merge_methods` adds: `<merged>-<method>` -> (merged model, method), for
    every configured merged model and every listed method other than its own."""
    methods = cfg["experiments"]["merge_methods"]
    merges = {name: spec for name, spec in cfg["models"].items() if "merge" in spec}
    siblings = {f"{name}-{method}" for name in merges for method in methods}
    return {f"{name}-{method}": (name, method) for name, spec in merges.items() if name not in siblings
            for method in methods if method != spec["method"]}


def add_merge_variants(cfg: dict[str, Any]) -> None:
    """Add the compared methods' merged models to `models` (same inputs, t from their own sweep)."""
    for variant, (name, method) in merge_variants(cfg).items():
        if variant in cfg["models"]:
            if cfg["models"][variant].get("merge") == cfg["models"][name]["merge"] and cfg["models"][variant].get("method") == method:
                continue  # already added (a validated config passes through here again)
            raise ConfigError(f"config key 'models.{variant}': the name is taken; experiments.merge_methods names the "
                              f"{method} merge of '{name}' so")
        cfg["models"][variant] = {"merge": list(cfg["models"][name]["merge"]), "method": method, "t": "auto", "mix": "even"}


def _check_sae(cfg: dict[str, Any]) -> None:
    fractions = cfg["sae"].get("matryoshka_fractions")
    if fractions is not None and (fractions[-1] != 1 or any(a >= b for a, b in zip(fractions, fractions[1:], strict=False))):
        raise ConfigError(f"config key 'sae.matryoshka_fractions': {fractions} must increase strictly and end at 1 (the whole dictionary)")


def check_config(cfg: dict[str, Any], lineage: Lineage, workdir: str | Path) -> None:
    """Every cross-field check of a validated config; raise ConfigError naming the first bad key."""
    for corpus in cfg["tokenizer"].get("train_on") or []:
        if corpus not in cfg["corpora"]:
            raise ConfigError(f"config key 'tokenizer.train_on': '{corpus}' is not a corpus (known: {', '.join(cfg['corpora'])})")
    for name, spec in cfg["corpora"].items():
        if ("files" in spec) == ("dataset" in spec):
            raise ConfigError(f"config key 'corpora.{name}' needs exactly one of 'files' or 'dataset'")
    hypotheses = cfg["analysis"]["hypotheses"]
    for study, name in cfg["analysis"]["case_studies"].items():
        if study != "contexts" and name not in hypotheses:
            raise ConfigError(f"config key 'analysis.case_studies.{study}': '{name}' is not a hypothesis in analysis.hypotheses "
                              f"(known: {', '.join(hypotheses) or 'none'})")
    _check_controls(cfg, lineage)
    _check_sae(cfg)
    _check_sae_seeds(cfg, lineage)
    _check_widths(cfg)
    _check_architectures(cfg)
    _check_pretrained(cfg, lineage, workdir)
