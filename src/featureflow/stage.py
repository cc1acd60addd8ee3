"""Run one stage inside a Snakemake job: logging to the rule's log, one-line errors."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any, TypeVar

from featureflow.config import ConfigError, CorpusError
from featureflow.inputs import LineageFiles
from featureflow.settings import Resources, from_block

T = TypeVar("T")

# Errors about user input: reported as one line, without a traceback.
USER_ERRORS = (ConfigError, CorpusError, FileNotFoundError)


@contextlib.contextmanager
def stage_main(log_path: str) -> Iterator[None]:
    """Send logging, warnings and tqdm (stderr) to `log_path`; turn user errors into one line and exit 1."""
    terminal = sys.stderr
    with open(log_path, "w", buffering=1) as log_file:
        sys.stderr = log_file
        logging.basicConfig(stream=log_file, level=logging.INFO, force=True,
                            format="%(asctime)s %(name)s %(levelname)s: %(message)s")
        logging.captureWarnings(True)
        try:
            yield
        except USER_ERRORS as err:
            line = f"error: {err}"
            log_file.write(line + "\n")
            terminal.write(line + "\n")
            sys.exit(1)
        finally:
            sys.stderr = terminal
            # exit-time loggers (torch) must not write to the closed log file
            logging.basicConfig(stream=terminal, level=logging.WARNING, force=True)


def job_resources(smk: Any) -> Resources:
    """The device and compile switch (rule params, from the job's class), threads and memory (MB) a Snakemake job runs with.

    Only training rules pass `compile`; evaluation jobs never compile.

    `tensorboard` comes from the config itself, not from params: switching it reruns nothing.
    """
    return Resources(device=smk.params.device, threads=smk.threads, compile=getattr(smk.params, "compile", False),
                     tensorboard=bool(smk.config.get("tensorboard", False)), mem_mb=getattr(smk.resources, "mem_mb", None))


def lineage_files(smk: Any) -> LineageFiles:
    """The job's inputs by role (rule: `input: **files.as_input()`, `params: layout=files.layout()`)."""
    return LineageFiles.from_input({k: smk.input[k] for k in smk.input.keys()}, smk.params.layout)


def rule_settings(smk: Any, cls: type[T], block: str, run_only: tuple[str, ...] = ()) -> T:
    """Settings type `cls` from the rule's `params.settings`, completed by the `run_only` fields
    read from the config's `block` (fields that change no output, so the rule leaves them out of
    its params and changing them reruns nothing)."""
    return from_block(cls, {**smk.params.settings, **{k: smk.config[block][k] for k in run_only}})
