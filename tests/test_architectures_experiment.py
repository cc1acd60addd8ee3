"""SAE architectures compared (experiments.architectures): what the plan builds, bad entries refused by name,
the table's numbers on planted files, and a workflow run whose lineage rows agree with classify's counts."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from featureflow.config import ConfigError
from featureflow.plan import load_plan
from helpers import REPO, SCHEMA, dump_yaml, snakemake_local


def micro(**experiments):
    cfg = yaml.safe_load((REPO / "config/micro.yaml").read_text())
    return {**cfg, "experiments": experiments}


def test_the_plan_adds_an_sae_per_architecture_and_reuses_the_lineages_own():
    plan = load_plan(micro(architectures=["topk", {"architecture": "jumprelu", "l0_coefficient": 2e-3}, "standard"]), SCHEMA, REPO)
    assert plan.architectures() == ["standard", "topk", "jumprelu"] and plan.trained_architectures() == ["topk", "jumprelu"]
    assert plan.architecture_models() == plan.width_models() or plan.architecture_models() == plan.sweep_models()
    assert plan.architecture_edges() == ["babypython__lua", "babypython__tinystories", "lua__luastories", "tinystories__luastories"]
    assert plan.architecture_file("acts", "standard", model="lua") == plan.paths("acts", model="lua"), "the lineage's own SAEs"
    assert plan.architecture_file("corr", "topk", edge="lua__luastories") == "results/flow/architectures/topk/corr/lua__luastories.npz"
    assert plan.architecture_seed_models() == ["babypython"], "micro's controls.sae_seed"
    assert plan.architecture_file("seed_corr", "standard", model="babypython") == plan.paths("control_corr", model="babypython")
    topk, jump = plan.sae_with_architecture("topk"), plan.sae_with_architecture("jumprelu")
    assert topk.architecture == "topk" and topk.options == {"k": None, "aux_k": None, "aux_coefficient": 0.03125}
    assert plan.k_from_l0("topk") and not plan.k_from_l0("jumprelu")
    assert jump.options == {"l0_coefficient": 2e-3, "bandwidth": 0.05, "init_threshold": 0.01}
    assert (topk.tokens, topk.hook, topk.expansion_factor) == (plan.sae.tokens, plan.sae.hook, plan.sae.expansion_factor)
    assert plan.sae_architecture_inputs("lua", "topk")["l0_from"] == plan.paths("sae_metrics", model="lua")
    assert "l0_from" not in plan.sae_architecture_inputs("lua", "jumprelu")
    assert plan.architectures_spec()["settings"]["topk"]["k"] == "L0 of the lineage SAE"
    fixed = load_plan(micro(architectures=[{"architecture": "topk", "k": 5}]), SCHEMA, REPO)
    assert fixed.sae_with_architecture("topk").options["k"] == 5 and "l0_from" not in fixed.sae_architecture_inputs("lua", "topk")
    json.dumps(plan.architectures_inputs()), json.dumps(plan.architectures_spec())  # rule params: plain data
    assert {plan.paths("architectures"), plan.paths("architectures_png")} <= set(plan.targets())
    assert not any("architectures" in t for t in load_plan(micro(), SCHEMA, REPO).targets())


@pytest.mark.parametrize(("change", "message"), [
    ({"experiments": {"architectures": ["topk", {"architecture": "topk", "k": 3}]}}, "'topk' is listed twice"),
    ({"experiments": {"architectures": [{"architecture": "standard", "l1_coefficient": 0.01}]}},
     "'standard' is the lineage's own architecture .* cannot be listed with other settings \\(l1_coefficient\\)"),
    ({"experiments": {"architectures": [{"architecture": "topk", "l0_coefficient": 0.01}]}},
     "'experiments.architectures.0.l0_coefficient': applies to architecture jumprelu only, not to 'topk'"),
    ({"experiments": {"architectures": ["gated"]}}, "'experiments.architectures.0': 'gated' is not one of"),
    ({"experiments": {"architectures": ["topk"]}, "threshold": "null-0.01", "controls": {"shuffle": {}}}, "needs a numeric threshold"),
    ({"experiments": {"architectures": ["topk"]}, "criterion": "decoder_cosine"}, "criterion 'decoder_cosine'"),
    ({"sae": {"architecture": "matryoshka_batchtopk", "matryoshka_fractions": [0.5, 0.25, 1.0]}}, "must increase strictly and end at 1"),
    ({"experiments": {"widths": [{"factor": 4, "l1_coefficient": 0.01}]}, "sae": {"architecture": "topk"}},
     "sets l1_coefficient, which applies to architecture standard only, not to 'topk'"),
])
def test_bad_architecture_entries_are_one_line(change, message):
    cfg = micro()
    if "sae" in change:
        change = {**change, "sae": {**{k: v for k, v in cfg["sae"].items() if k not in ("l1_coefficient",)}, **change["sae"]}}
    with pytest.raises(ConfigError, match=message) as err:
        load_plan({**cfg, **change}, SCHEMA, REPO)
    assert "\n" not in str(err.value)


def test_k_comes_from_the_lineage_saes_measured_l0(tmp_path):
    from featureflow.sae import with_measured_k
    from featureflow.settings import SAESettings
    from helpers import settings

    (tmp_path / "m.json").write_text(json.dumps({"l0": 27.6}))
    s = settings(SAESettings, architecture="topk", k=None)
    assert with_measured_k(s, tmp_path / "m.json").options["k"] == 28
    (tmp_path / "m.json").write_text(json.dumps({"l0": 0.2}))
    assert with_measured_k(s, tmp_path / "m.json").options["k"] == 1, "at least one latent"
    fixed = settings(SAESettings, architecture="topk", k=9)
    assert with_measured_k(fixed, tmp_path / "m.json") is fixed


def test_the_table_rows_are_the_sweeps_per_architecture(tmp_path):
    from featureflow.flow import ArchitectureSpec, architecture_edge_rows, architecture_sae_rows, save_matches
    from featureflow.flow.matches import Matches

    def planted(fwd, bwd):
        fwd, bwd = (np.asarray(c, dtype=np.float32)[:, None] for c in (fwd, bwd))
        path = tmp_path / f"c{len(list(tmp_path.glob('c*')))}.npz"
        ones = np.ones(len(fwd), dtype=bool)
        save_matches(path, Matches(np.zeros_like(fwd, dtype=np.int32), fwd, np.zeros_like(bwd, dtype=np.int32), bwd, ones, ones, 100), {})
        return str(path)

    def metrics(l0, dead):
        path = tmp_path / f"m{len(list(tmp_path.glob('m*')))}.json"
        path.write_text(json.dumps({"d_sae": 2048, "l0": l0, "mse": 0.001, "explained_variance": 0.8, "explained_loss": 0.9,
                                    "dead_fraction": dead}))
        return str(path)

    spec = ArchitectureSpec(architectures=["standard", "topk"], own="standard", models=["a", "b"],
                            edges=[{"source": "a", "target": "b", "kind": "finetune"}], threshold=0.8,
                            settings={"topk": {"k": 30, "aux_k": None}})
    corr = {"standard": ([0.9, 0.85, 0.1, 0.2], [0.9, 0.1, 0.1, 0.1]), "topk": ([0.9, 0.1, 0.1, 0.1], [0.95, 0.95, 0.1, 0.1])}
    files = {a: {"a__b": planted(*c)} for a, c in corr.items()}
    mets = {a: {"a": metrics(30.0, 0.1), "b": metrics(29.0, 0.25)} for a in corr}
    ceiling = {"standard": {"a": planted([0.9, 0.9, 0.9, 0.1], [0.9] * 4)}, "topk": {"a": planted([0.9, 0.1, 0.1, 0.1], [0.9] * 4)}}
    saes = architecture_sae_rows(spec, mets, ceiling)
    rows = architecture_edge_rows(spec, files, saes).set_index("architecture")
    assert rows.loc["standard", "persisting_share"] == 0.5 and rows.loc["topk", "persisting_share"] == 0.25
    assert rows.loc["standard", "share_of_ceiling"] == pytest.approx(0.5 / 0.75, abs=1e-3)
    assert rows.loc["topk", "share_of_ceiling"] == pytest.approx(1.0), "a quarter persists, and a quarter is all its seeds agree on"
    assert rows.loc["topk", "emerging_share"] == 0.5 and rows.loc["topk", "target_dead_fraction"] == 0.25
    by = saes.set_index(["model", "architecture"])
    assert by.loc[("a", "topk"), "settings"] == "k 30, aux_k None" and by.loc[("a", "standard"), "own_architecture"]


def test_a_workflow_run_trains_only_the_new_architectures_and_agrees_with_classify_at_its_own(micro_run, tmp_path):
    """topk (k from the lineage L0) and jumprelu on the micro run: only their SAEs (and babypython's seed twins),
    activations and correlations run; the standard rows are classify's counts; each TopK SAE keeps the
    rounded L0 of its model's lineage SAE; every SAE folder reloads as SAELens' layout of its architecture."""
    from featureflow.sae import load_sae
    from helpers import micro_lock

    wd = tmp_path / "wd"
    with micro_lock(micro_run[0]):
        shutil.copytree(micro_run[0], wd, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    extra = dump_yaml({"experiments": {"architectures": ["topk", {"architecture": "jumprelu", "l0_coefficient": 2e-3}]},
                       "figures": {"png": False}}, tmp_path / "architectures.yaml")
    args = ("--configfile", str(REPO / "config/micro.yaml"), str(extra))
    before = {p: p.stat().st_mtime for p in (wd / "results/sae").rglob("*") if p.is_file()}
    run = snakemake_local(wd, *args, "--", "results/flow/architectures.csv")
    assert run.returncode == 0, run.stderr[-3000:]
    ran = set(re.findall(r"^(?:local)?rule (\w+):", run.stderr, flags=re.M))
    assert ran == {"sae_arch", "sae_arch_eval", "arch_acts", "arch_corr", "sae_arch_seed", "arch_seed_acts", "arch_seed_corr",
                   "architectures"}, ran
    assert before == {p: p.stat().st_mtime for p in before}, "the lineage's own SAEs were not touched"
    table = pd.read_csv(wd / "results/flow/architectures.csv")
    counts = pd.read_csv(wd / "results/flow/counts.csv")
    own = table[table["architecture"] == "standard"].set_index("edge")
    persisting = counts[counts["quantity"] == "source features persisting"].set_index("edge")
    assert own["persisting"].to_dict() == persisting["ours"].to_dict()
    saes = pd.read_csv(wd / "results/flow/architectures_saes.csv").set_index(["model", "architecture"])
    for model in ("lua", "babypython"):
        lineage_l0 = json.loads((wd / f"results/sae/{model}/metrics.json").read_text())["l0"]
        cfg = json.loads((wd / f"results/flow/architectures/topk/sae/{model}/cfg.json").read_text())
        assert cfg["architecture"] == "topk" and cfg["k"] == max(1, round(lineage_l0))
        assert saes.loc[(model, "topk"), "l0"] <= cfg["k"] + 1e-6
    jump = load_sae(wd / "results/flow/architectures/jumprelu/sae/lua")
    assert jump.architecture.name == "jumprelu" and (jump.weights["threshold"] >= 0).all()
    assert not np.isnan(saes.loc[("babypython", "topk"), "seed_ceiling"]) and np.isnan(saes.loc[("lua", "topk"), "seed_ceiling"])
    again = snakemake_local(wd, *args, "-n", "--", "results/flow/architectures.csv")
    assert "Nothing to be done" in again.stdout + again.stderr, "a rerun is a no-op"
