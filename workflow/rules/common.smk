# Config validation, the lineage graph, and the one place where targets are derived.
import os
import sys
from pathlib import Path

_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
# Scripts run as subprocesses (locally or in SLURM jobs): let them import the package too.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)

from featureflow.config import ConfigError
from featureflow.plan import load_plan

try:
    PLAN = load_plan(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(f"config error: {err}") from None

CFG = PLAN.config
LINEAGE = PLAN.lineage
R = CFG["results_dir"]


wildcard_constraints:
    corpus="|".join(CFG["corpora"]),
    model="|".join(LINEAGE.order),
    split="train|validation",
    edge="|".join(PLAN.edge_names()) or "NO_EDGES",


def final_targets():
    """Every file `snakemake` (rule all) builds for the configured lineage."""
    return PLAN.targets()
