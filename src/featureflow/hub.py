"""Pretrained checkpoints and SAEs from a local folder or a Hugging Face hub snapshot, fetched once.

A hub id (owner/name) is downloaded by `huggingface_hub.snapshot_download` into the run's
`data_cache` (``<data_cache>/hub``, the hub's own cache layout), inside a local rule that runs
where Snakemake runs: compute nodes later read the copy the rule wrote under results/. With the hub
offline (HF_HUB_OFFLINE=1) a snapshot already in the cache is used and nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from featureflow.config import ConfigError
from featureflow.lineage import Pretrained

log = logging.getLogger(__name__)

HUB_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


@contextlib.contextmanager
def hub_access(cache_dir: str | Path | None, online: bool) -> Iterator[None]:
    """The environment of a job that reads the hub: the `data_cache` folder, and (with `online`) the hub
    switched back on, unless the user had switched it off before starting Snakemake (common.smk)."""
    names = (*HUB_OFFLINE_VARS, "HF_DATASETS_CACHE", "HF_HUB_CACHE")
    saved = {k: os.environ.get(k) for k in names}
    if online:
        for var in HUB_OFFLINE_VARS:
            os.environ[var] = os.environ.get("FEATUREFLOW_USER_" + var) or "0"
    if cache_dir:
        os.environ["HF_DATASETS_CACHE"] = str(Path(cache_dir) / "datasets")
        os.environ["HF_HUB_CACHE"] = str(Path(cache_dir) / "hub")
    # huggingface_hub reads HF_HUB_OFFLINE once, when imported: a job that imported it (transformers
    # does) before this point would still see the hub off
    hub_constants = getattr(sys.modules.get("huggingface_hub"), "constants", None)
    saved_constant = getattr(hub_constants, "HF_HUB_OFFLINE", None)
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = hub_offline()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = saved_constant


def hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in HUB_OFFLINE_VARS)




def _hub_error(what: str, source: Pretrained, err: Exception) -> ConfigError:
    """One line for a failed snapshot download, saying what to do about it."""
    kind, text = type(err).__name__, (str(err).splitlines() or [""])[0]
    at = f"{what}: '{source.source}'" + (f" at revision '{source.revision}'" if source.revision else "")
    if kind == "GatedRepoError":
        return ConfigError(f"{at} is gated: accept its terms on https://huggingface.co/{source.source}, then "
                           "`huggingface-cli login` or set HF_TOKEN, and rerun")
    if kind == "RepositoryNotFoundError":
        return ConfigError(f"{at} is not a hub repository (a private one also needs HF_TOKEN); a local folder must exist")
    if kind == "RevisionNotFoundError":
        return ConfigError(f"{at}: no such revision on the hub")
    if kind in ("LocalEntryNotFoundError", "OfflineModeIsEnabled") or hub_offline():
        return ConfigError(f"{at} is not in the cache and the hub is offline here (HF_HUB_OFFLINE); run the fetch once "
                           "where the network is (it is a local rule), or set `data_cache` to a cache that has it")
    return ConfigError(f"{at} could not be fetched ({kind}: {text})")


def snapshot(source: Pretrained, what: str, cache_dir: str | None, patterns: list[str] | None) -> tuple[Path, str | None]:
    """The folder holding `source` (a local folder, or a hub snapshot fetched into `cache_dir`) and, for
    a hub snapshot, its commit hash. `what` names the config key in errors; `patterns` limits the files
    fetched (None: all)."""
    local = source.local_folder(".")
    if local is not None:
        if source.revision:
            raise ConfigError(f"{what}: 'revision' applies to hub ids (owner/name); '{source.source}' is a local folder")
        if not local.is_dir():
            raise ConfigError(f"{what}: folder '{local}' not found")
        return local, None
    with hub_access(cache_dir, online=True):
        from huggingface_hub import snapshot_download

        hub_cache = str(Path(cache_dir) / "hub") if cache_dir else None
        if source.path:
            patterns = [f"{source.path}/{p}" for p in (patterns or ["*"])]
        try:
            root = Path(snapshot_download(source.source, revision=source.revision, cache_dir=hub_cache,
                                          allow_patterns=patterns, local_files_only=hub_offline()))
        except Exception as err:  # the hub raises many kinds: one line each
            raise _hub_error(what, source, err) from None
    log.info("%s: %s (revision %s) at %s", what, source.source, source.revision or "main", root)
    folder = root / (source.path or "")
    if not folder.is_dir():
        raise ConfigError(f"{what}: '{source.source}' has no folder '{source.path}'")
    return folder, root.name
