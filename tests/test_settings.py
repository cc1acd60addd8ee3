"""Settings types, the schema and the result paths: one source for each, and they agree."""

import collections.abc
import dataclasses
import types
import typing

import pytest
import yaml

from featureflow.paths import TEMPLATES, ResultPaths
from featureflow.plan import load_plan
from featureflow.settings import BLOCKS, ActsSettings, JobClass, LMSettings, SAESettings, TrainJob, TrainSettings, as_params, from_block
from helpers import REPO, SCHEMA, settings

# Keys of a config block that a settings type leaves out on purpose, and why.
# read by one rule alone: changing sae.eval_tokens must not retrain an SAE, nor acts.corpora (the sample's files) redraw it;
# sae.seeds is read by the plan (sae_seed), into the SAE jobs' seed, not their settings
NOT_IN_TYPE = {SAESettings: {"eval_tokens", "seeds"}, ActsSettings: {"corpora"}}


def schema_block(path: str) -> dict:
    node = yaml.safe_load(SCHEMA.read_text())
    for key in path.split("."):
        if key == "*":
            node = node["additionalProperties"]
            continue
        node = node["properties"][key]
        node = _resolve(node)
    return node


def _resolve(node: dict) -> dict:
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        return yaml.safe_load(SCHEMA.read_text())["definitions"][name]
    return node


@pytest.mark.parametrize("cls", list(BLOCKS), ids=lambda c: c.__name__)
def test_every_settings_type_has_exactly_its_schema_block_keys(cls):
    path = BLOCKS[cls].replace("resources.*", "resources.train")  # every class has the same keys (tested below)
    keys = set(schema_block(path)["properties"])
    fields = {f.name for f in dataclasses.fields(cls)}
    if cls is SAESettings:  # the architectures' own keys travel in `options` (featureflow.sae.architectures)
        from featureflow.sae.architectures import ARCHITECTURES

        own = {f.name for a in ARCHITECTURES.values() for f in dataclasses.fields(a.config_class)}
        assert own <= keys and "options" in fields
        keys, fields = keys - own, fields - {"options"}
    assert fields == keys - NOT_IN_TYPE.get(cls, set())


@pytest.mark.parametrize("cls", list(BLOCKS), ids=lambda c: c.__name__)
def test_settings_types_have_no_defaults_of_their_own(cls):
    """The schema is the one source of defaults."""
    for f in dataclasses.fields(cls):
        assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, f.name


def test_every_job_class_in_the_schema_has_the_same_keys():
    classes = schema_block("resources")["properties"]
    assert set(classes) == {"light", "tokenize", "train", "merge", "sae", "gpu_eval", "cpu_eval"}
    for name, block in classes.items():
        assert set(block["properties"]) == {f.name for f in dataclasses.fields(JobClass)}, name


def test_schema_defaults_build_every_type_and_round_trip_through_params():
    for cls in BLOCKS:
        obj = settings(cls)
        assert from_block(cls, as_params(obj)) == obj, cls.__name__
    lm = settings(LMSettings)
    assert lm.scratch.lr == 6e-4 and lm.finetune.lr == 2e-5 and lm.architecture.d_mlp == 1024
    assert lm.train_job(fine_tune=True) == TrainJob(lm.architecture, lm.finetune, lm.checkpoint_every,
                                                    lm.keep_checkpoints, lm.log_every, lm.architecture.block_size)
    assert settings(SAESettings).betas == (0.9, 0.9999), "lists become tuples"


def test_from_block_refuses_missing_and_unknown_keys():
    block = as_params(settings(TrainSettings))
    with pytest.raises(ValueError, match="TrainSettings: missing settings lr"):
        from_block(TrainSettings, {k: v for k, v in block.items() if k != "lr"})
    with pytest.raises(ValueError, match="TrainSettings: unknown settings momentum"):
        from_block(TrainSettings, {**block, "momentum": 0.9})


def test_settings_are_frozen():
    s = settings(TrainSettings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lr = 1.0


# float: JSON numbers; Mapping: a block of keys (SAESettings.options)
ACCEPTS = {float: (int, float), int: (int,), bool: (bool,), str: (str,), tuple: (tuple,), dict: (dict,), collections.abc.Mapping: (dict,)}


def test_settings_field_types_accept_the_schema_defaults():
    for cls in BLOCKS:
        obj = settings(cls)
        for f in dataclasses.fields(cls):
            value, hint = getattr(obj, f.name), typing.get_type_hints(cls)[f.name]
            if value is None or dataclasses.is_dataclass(hint):
                continue
            if typing.get_origin(hint) is typing.Literal:
                assert value in typing.get_args(hint), (cls.__name__, f.name)
                continue
            union = typing.get_origin(hint) in (typing.Union, types.UnionType)
            kinds = [typing.get_origin(k) or k for k in (typing.get_args(hint) if union else (hint,)) if k is not type(None)]
            assert any(isinstance(value, ACCEPTS[k]) for k in kinds), (cls.__name__, f.name, value)


def test_paths_fill_some_or_all_wildcards():
    p = ResultPaths("out")
    assert p("tokens") == "out/data/tokens/{corpus}/{split}.npy"
    assert p("tokens", split="train") == "out/data/tokens/{corpus}/train.npy"
    assert p("tokens", corpus="lua", split="train") == "out/data/tokens/lua/train.npy"
    with pytest.raises(KeyError, match="no result path named 'tokenz'"):
        p("tokenz")


def test_every_result_lives_under_its_stage_folder():
    stages = {"data", "lm", "merge", "sae", "flow", "analysis", "browser", "interp", "checkpoints"}
    report = {"reproduction_md", "reproduction_html", "landing"}  # the report's pages: the top of results/
    for key, template in TEMPLATES.items():
        if key in report:
            assert "/" not in template, key
        else:
            assert template.split("/")[0] in stages, key
    assert len(set(TEMPLATES.values())) == len(TEMPLATES), "two names for one file"


def test_plan_targets_are_rule_outputs_of_the_templates():
    """Every target the plan asks for is an instance of a declared template (no path written twice)."""
    import re

    plan = load_plan(yaml.safe_load((REPO / "config.yaml").read_text()), SCHEMA, workdir=REPO)
    patterns = [re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(plan.paths(k))) + "$") for k in TEMPLATES]
    for target in plan.targets():
        assert any(p.match(target) for p in patterns), target
