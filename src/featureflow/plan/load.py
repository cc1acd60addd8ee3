"""From a raw workflow config to a checked plan: `load_plan` and the `Plan` its jobs are built from.

Everything that decides *what* the workflow builds lives in this package, so the rules never read the
config to make lists of their own. `Plan` is its parts put together, one module a job: typed settings
(`settings`), file routing per stage (`routes`), the controls' and experiments' routing (`experiments`)
and the target list (`targets`); `validate` checks and completes the config before any of them runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featureflow.config import resolve_local_files, validate_config
from featureflow.context import lineage_context
from featureflow.lineage import Lineage, build_lineage
from featureflow.paths import ResultPaths
from featureflow.plan.architectures import ArchitectureRoutes
from featureflow.plan.experiments import ControlRoutes, ExperimentRoutes
from featureflow.plan.routes import DataRoutes, FeatureRoutes, FlowRoutes, ModelRoutes, SAERoutes
from featureflow.plan.settings import SettingsAccess
from featureflow.plan.targets import TargetList
from featureflow.plan.validate import add_merge_variants, check_config


@dataclass
class Plan(SettingsAccess, DataRoutes, ModelRoutes, SAERoutes, FlowRoutes, FeatureRoutes, ControlRoutes, ExperimentRoutes,
           ArchitectureRoutes, TargetList):
    """A checked config with its lineage: the typed settings, files and targets of every stage."""

    config: dict[str, Any]
    lineage: Lineage
    files: dict[str, list[Path]]  # local corpus -> its resolved files
    paths: ResultPaths = field(init=False)

    def __post_init__(self) -> None:
        self.paths = ResultPaths(self.config["results_dir"])


def load_plan(config: dict[str, Any], schema_path: str | Path, workdir: str | Path = ".") -> Plan:
    """Validate `config`, build the lineage and check local corpus files; raise ConfigError on any problem."""
    cfg = validate_config(config, schema_path)
    add_merge_variants(cfg)
    lineage = build_lineage(cfg)
    check_config(cfg, lineage, workdir)
    cfg["lm"]["context_size"] = lineage_context(cfg, lineage, workdir)
    files = {n: resolve_local_files(n, s["files"], workdir) for n, s in cfg["corpora"].items() if "files" in s}
    return Plan(cfg, lineage, files)
