"""Config validation: defaults, unknown keys, wrong types, broken lineages, missing files."""

import copy

import pytest
import yaml

from featureflow.config import ConfigError, validate_config
from featureflow.plan import load_plan
from helpers import REPO, SCHEMA, lineage_config, write_corpora


def plan_error(tmp_path, cfg) -> str:
    write_corpora(tmp_path, n_docs=4)
    with pytest.raises(ConfigError) as info:
        load_plan(cfg, SCHEMA, workdir=tmp_path)
    message = str(info.value)
    assert "\n" not in message, "errors must be one line"
    return message


def test_defaults_are_filled_and_input_is_not_mutated():
    cfg = lineage_config()
    before = copy.deepcopy(cfg)
    resolved = validate_config(cfg, SCHEMA)
    assert cfg == before
    assert resolved["threshold"] == 0.8
    assert resolved["results_dir"] == "results"
    assert resolved["corpora"]["lua"]["validation_fraction"] == 0.05
    assert resolved["corpora"]["lua"]["doc_separator"] == "\x1e"
    assert resolved["tokenizer"]["min_frequency"] == 2
    assert resolved["models"]["babypython"]["mix"] == "even"


@pytest.mark.parametrize("config_file", ["config.yaml", "config/micro.yaml", "config/paper.yaml"])
def test_shipped_configs_validate(config_file):
    cfg = yaml.safe_load((REPO / config_file).read_text())
    plan = load_plan(cfg, SCHEMA, workdir=REPO)
    assert [e.name for e in plan.lineage.edges] == [
        "babypython__lua", "babypython__tinystories", "lua__luastories", "tinystories__luastories"]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update(treshold=0.5), "unknown config key 'treshold'"),
        (lambda c: c["corpora"]["lua"].update(fles=["x"]), "unknown config key 'corpora.lua.fles'"),
        (lambda c: c["models"]["lua"].update(lr=1), "unknown config key 'models.lua.lr'"),
        (lambda c: c.update(threshold="high"), "'threshold': 'high' does not match"),
        (lambda c: c.update(threshold=1.5), "'threshold': 1.5 is greater than the maximum"),
        (lambda c: c["tokenizer"].update(kind="wordpiece"), "'tokenizer.kind': 'wordpiece' is not one of"),
        (lambda c: c["models"]["luastories"].update(t=1.2), "'models.luastories.t': 1.2 is not valid"),
        (lambda c: c["models"]["luastories"].update(merge=["lua"]), "'models.luastories.merge'"),
        (lambda c: c["corpora"]["lua"].update(validation_fraction=0), "'corpora.lua.validation_fraction'"),
        (lambda c: c.update(seed=-1), "config key 'seed': -1 is less than the minimum of 0"),
        (lambda c: c.update(resources={"gpu": {"threads": 1}}), "unknown config key 'resources.gpu'"),
        (lambda c: c.update(resources={"sae": {"threads": 0}}), "'resources.sae.threads': 0 is less than the minimum of 1"),
    ],
)
def test_schema_errors_name_the_key_and_value(tmp_path, mutate, expected):
    cfg = lineage_config()
    mutate(cfg)
    assert expected in plan_error(tmp_path, cfg)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda m: m["lua"].update(parent="babypyton"), "'models.lua.parent': 'babypyton' is not a model"),
        (lambda m: m["luastories"].update(merge=["lua", "stories"]), "'models.luastories.merge': 'stories' is not a model"),
        (lambda m: m["lua"].update(train_on=["lua", "perl"]), "'models.lua.train_on': 'perl' is not a corpus"),
        (lambda m: m["lua"].update(parent="lua"), "'models.lua.parent' refers to the model itself"),
        (lambda m: m["luastories"].update(train_on=["lua"]), "needs exactly one of 'train_on', 'merge' or 'pretrained'"),
        (lambda m: m["lua"].update(t=0.5), "'models.lua.t' only applies to merged models"),
        (lambda m: m["luastories"].update(merge=["lua", "lua"]), "lists 'lua' twice"),
        (lambda m: m["babypython"].update(parent="tinystories"), "cycle in the lineage: babypython -> tinystories -> babypython"),
        (lambda m: m.update(lua__x={"parent": "lua", "train_on": ["lua"]}), "'models.lua__x': name 'lua__x' is not allowed"),
        (lambda m: m.update(lua_={"parent": "lua", "train_on": ["lua"]}), "'models.lua_': name 'lua_' is not allowed"),
        (lambda m: m.update({"lua/x": {"parent": "lua", "train_on": ["lua"]}}), "'models.lua/x': name 'lua/x' is not allowed"),
    ],
)
def test_lineage_errors_name_the_model(tmp_path, mutate, expected):
    cfg = lineage_config()
    mutate(cfg["models"])
    assert expected in plan_error(tmp_path, cfg)


def test_missing_corpus_file_is_named(tmp_path):
    cfg = lineage_config()
    cfg["corpora"]["lua"]["files"] = ["data/nope.lua.txt"]
    assert "corpus 'lua': file 'data/nope.lua.txt' does not exist" in plan_error(tmp_path, cfg)


def test_empty_corpus_file_is_named(tmp_path):
    cfg = lineage_config()
    write_corpora(tmp_path, n_docs=4)
    (tmp_path / "data" / "empty.txt").write_text("")
    cfg["corpora"]["lua"]["files"] = ["data/empty.txt"]
    with pytest.raises(ConfigError, match=r"corpus 'lua': file '.*data/empty.txt' is empty"):
        load_plan(cfg, SCHEMA, workdir=tmp_path)


def test_tokenizer_corpora_must_exist(tmp_path):
    cfg = lineage_config(tokenizer={"kind": "bpe", "train_on": ["klingon"]})
    assert "'tokenizer.train_on': 'klingon' is not a corpus" in plan_error(tmp_path, cfg)
