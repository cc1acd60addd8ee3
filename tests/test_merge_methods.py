"""Merge methods compared (experiments.merge_methods): siblings in the lineage, and the table's numbers."""

import json

import pandas as pd
import pytest
import yaml

from featureflow.config import ConfigError
from featureflow.plan import load_plan
from helpers import REPO, SCHEMA


def micro(**experiments):
    cfg = yaml.safe_load((REPO / "config/micro.yaml").read_text())
    return {**cfg, "experiments": experiments}


def test_each_method_is_a_merged_model_of_the_lineage_with_its_own_t():
    plan = load_plan(micro(merge_methods=["linear", "ties", "slerp"]), SCHEMA, REPO)
    assert plan.merge_method_groups() == {"luastories": ["luastories", "luastories-linear", "luastories-ties"]}
    for sibling, method in (("luastories-linear", "linear"), ("luastories-ties", "ties")):
        m = plan.lineage.models[sibling]
        assert (m.kind, m.merge, m.method, m.t) == ("merge", ("lua", "tinystories"), method, "auto")
        assert {e.name for e in plan.lineage.edges} >= {f"lua__{sibling}", f"tinystories__{sibling}"}
        assert plan.paths("sae_metrics", model=sibling) in plan.targets()
    assert plan.paths("merge_methods_png") in plan.targets()
    assert plan.merge_base("luastories-ties") == "babypython"
    assert plan.sae_seed_models() == ["babypython"] and plan.lineage.roots == ["babypython"]
    again = load_plan(plan.config, SCHEMA, REPO)  # the validated config (with its siblings) passes through again
    assert again.lineage.order == plan.lineage.order
    assert not load_plan(micro(), SCHEMA, REPO).merge_method_groups()


def test_a_sibling_name_taken_by_another_model_is_one_line():
    cfg = micro(merge_methods=["linear"])
    cfg["models"]["luastories-linear"] = {"parent": "lua", "train_on": ["lua"]}
    with pytest.raises(ConfigError, match="'models.luastories-linear': the name is taken"):
        load_plan(cfg, SCHEMA, REPO)


def test_table_counts_persisting_from_each_input_and_emerging_in_the_merge(tmp_path):
    from featureflow.flow import merge_method_rows

    def side(edge, model, side, kind, classes):
        return [{"edge": edge, "model": model, "side": side, "kind": kind, "feature": i, "class": c} for i, c in enumerate(classes)]

    rows = (side("a__m", "a", "source", "merge", ["persisting", "persisting", "disappearing", "inactive"])
            + side("a__m", "m", "target", "merge", ["persisting", "emerging", "emerging", "inactive"])
            + side("b__m", "b", "source", "merge", ["persisting", "disappearing", "disappearing", "disappearing"])
            + side("b__m", "m", "target", "merge", ["emerging", "persisting", "emerging", "inactive"]))
    pd.DataFrame(rows).to_csv(tmp_path / "edges.csv", index=False)
    choice = {"method": "linear", "t": 0.55, "merged_accuracy": {"a": 0.4, "b": 0.5}, "merged_vs_input": {"a": -0.1, "b": -0.2}}
    (tmp_path / "m.json").write_text(json.dumps(choice))
    table = merge_method_rows({"m": ["m"]}, {"m": tmp_path / "m.json"}, tmp_path / "edges.csv")
    r = table.iloc[0]
    assert (r["method"], r["t"], r["accuracy[a]"], r["vs_input[b]"]) == ("linear", 0.55, 0.4, -0.2)
    assert (r["persisting_from[a]"], r["persisting_from[b]"]) == (0.5, 0.25)
    assert (r["traceable"], r["emerging"]) == (0.5, 0.25), "f0 from a, f1 from b, f2 from neither, f3 never active"
