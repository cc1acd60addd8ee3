"""Lineage derivation: edges, order, ancestry and the data each model has seen."""

import pytest

from featureflow.config import validate_config
from featureflow.lineage import build_lineage, edge_name, parse_edge_name
from featureflow.plan import load_plan
from helpers import SCHEMA, lineage_config, write_corpora


def lineage_of(cfg):
    return build_lineage(validate_config(cfg, SCHEMA))


def test_paper_lineage_edges_kinds_and_order():
    lin = lineage_of(lineage_config())
    assert [(e.source, e.target, e.kind) for e in lin.edges] == [
        ("babypython", "lua", "finetune"),
        ("babypython", "tinystories", "finetune"),
        ("lua", "luastories", "merge"),
        ("tinystories", "luastories", "merge"),
    ]
    assert lin.roots == ["babypython"]
    assert lin.trained == ["babypython", "lua", "tinystories"]
    assert lin.merged == ["luastories"]


def test_order_puts_inputs_first_whatever_the_config_order():
    cfg = lineage_config()
    cfg["models"] = dict(reversed(list(cfg["models"].items())))
    lin = lineage_of(cfg)
    pos = {m: i for i, m in enumerate(lin.order)}
    for edge in lin.edges:
        assert pos[edge.source] < pos[edge.target]


def test_lineage_corpora_follow_ancestry():
    lin = lineage_of(lineage_config())
    assert lin.lineage_corpora("babypython") == ["english", "python"]
    assert lin.lineage_corpora("lua") == ["lua", "english", "python"]
    assert sorted(lin.lineage_corpora("luastories")) == ["english", "lua", "python", "stories"]
    assert lin.common_ancestor("lua", "tinystories") == "babypython"
    assert lin.common_ancestor("lua", "babypython") == "babypython"


def test_fifth_model_needs_config_lines_only(tmp_path):
    write_corpora(tmp_path, n_docs=4)
    cfg = lineage_config()
    cfg["models"]["lua_stories_ft"] = {"parent": "luastories", "train_on": ["stories", "lua"], "mix": "concat"}
    plan = load_plan(cfg, SCHEMA, workdir=tmp_path)
    assert ("luastories", "lua_stories_ft", "finetune") in [(e.source, e.target, e.kind) for e in plan.lineage.edges]
    assert "results/data/mixtures/lua_stories_ft/train.npy" in plan.targets()


def test_merge_defaults_apply_only_to_merged_models():
    cfg = lineage_config()
    cfg["models"]["luastories"] = {"merge": ["lua", "tinystories"]}
    lin = lineage_of(cfg)
    assert (lin.models["luastories"].method, lin.models["luastories"].t) == ("slerp", "auto")
    assert lin.models["lua"].method is None


def test_edge_names_round_trip_and_refuse_ambiguity():
    lineage = lineage_of(lineage_config())
    for e in lineage.edges:
        assert parse_edge_name(e.name) == (e.source, e.target) and e.name == edge_name(e.source, e.target)
    assert parse_edge_name("lua_v2__luastories") == ("lua_v2", "luastories")
    for bad in ("lua", "__lua", "lua__", "a__b__c"):
        with pytest.raises(ValueError, match="is not an edge name"):
            parse_edge_name(bad)
