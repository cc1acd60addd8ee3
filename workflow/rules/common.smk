# Config validation, the lineage, result paths, job classes: what every rule file uses.
import os
import sys
from pathlib import Path

_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)
# Scripts run as subprocesses (locally or in SLURM jobs): let them import the package too.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)


envvars:
    "PYTHONPATH",  # passed on to cluster jobs

# Jobs run with the Hugging Face hub offline (compute nodes often have no network); only the local
# rule fetch_corpus goes online, unless the user had turned the hub off (featureflow.hub.hub_access).
for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault("FEATUREFLOW_USER_" + _var, os.environ.get(_var, ""))
    os.environ[_var] = "1"

from featureflow.config import ConfigError
from featureflow.plan import load_plan
from featureflow.settings import InterpSettings, as_params

try:
    PLAN = load_plan(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(f"config error: {err}") from None
config.update(PLAN.config)  # with the schema's defaults, as the report's captions read it

LINEAGE = PLAN.lineage
P = PLAN.paths  # P("tokens") -> "results/data/tokens/{corpus}/{split}.npy" (featureflow/paths.py)
ENV = "../../envs/featureflow.yaml"  # every rule's software (snakemake --sdm conda)


wildcard_constraints:
    corpus="|".join(PLAN.config["corpora"]),
    model="|".join(LINEAGE.order),
    split="train|validation",
    edge="|".join(PLAN.edge_names() + PLAN.control_edge_names()) or "NO_EDGES",


def job(name):
    """Job class `name` of the config's `resources:` block: a rule's threads, resources and device."""
    return PLAN.job_class(name)


def in_dir(name):
    """Param: the folder holding the rule's input `name` (a model, SAE or tokenizer folder)."""
    return lambda w, input: str(Path(input[name]).parent)


def out_dir(name):
    """Param: the folder holding the rule's output `name`."""
    return lambda w, output: str(Path(output[name]).parent)


def parent_dir(w, input):
    """Param: the parent's model folder, from the declared parent input (None for a model from scratch)."""
    return str(Path(input.parent[0]).parent) if input.parent else None


def figure(html, png, **report_args):
    """Named outputs `html` and `png` of a figure rule (keys of featureflow.paths). Without PNGs
    (`figures.png: false`) there is no `png` output and the HTML goes into Snakemake's report instead."""
    if not PLAN.png:
        return {"html": report(P(html), **report_args) if report_args else P(html)}
    return {"html": P(html), "png": report(P(png), **report_args) if report_args else P(png)}


def sae_files(kind):
    """Named outputs for an SAE folder: the keys `{kind}_weights`, `{kind}_cfg`,
    `{kind}_extra` and `{kind}_train_log` of featureflow.paths (kind: sae, control_sae, width_sae, ...)."""
    return {name: P(f"{kind}_{name}") for name in ("weights", "cfg", "extra", "train_log")}


def merge_params():
    """Params of both merge rules: the merged model's spec, the merge settings, the evaluation batch."""
    return dict(spec=lambda w: PLAN.merge_spec(w.model), settings=as_params(PLAN.merge), batch_size=PLAN.lm.eval_batch_size)


def only(models):
    """Wildcard constraint: one of `models` (never matches when there are none)."""
    return "|".join(models) or "^$"


def parent_files(w):
    """The parent's model folder files a fine-tune starts from (none for a model from scratch)."""
    parent = LINEAGE.models[w.model].parent
    return [P("model_weights", model=parent), P("model_config", model=parent)] if parent else []


def merge_input_files(w):
    return [P("model_weights", model=m) for m in PLAN.merge_participants(w.model)]


def final_targets():
    """Every file `snakemake` (rule all) builds for the configured lineage."""
    return PLAN.targets()
