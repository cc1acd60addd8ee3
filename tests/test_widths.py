"""Dictionary-width sweep (experiments.widths): what the plan builds, the table's numbers on planted
correlations, and a workflow run whose lineage-width row agrees with classify's counts."""

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


def test_the_sweep_adds_widths_of_the_configured_models_and_reuses_the_lineages_own():
    plan = load_plan(micro(widths=[8, 1]), SCHEMA, REPO)  # micro's own width: x2
    assert plan.widths() == [1, 2, 8] and plan.trained_widths() == [1, 8]
    assert plan.width_models() == ["babypython", "lua", "tinystories", "luastories"]
    assert plan.width_edges() == ["babypython__lua", "babypython__tinystories", "lua__luastories", "tinystories__luastories"]
    assert plan.width_file("acts", 2, model="lua") == plan.paths("acts", model="lua"), "the lineage's own SAEs, not a second copy"
    assert plan.width_file("corr", 8, edge="lua__luastories") == "results/flow/widths/x8/corr/lua__luastories.npz"
    assert plan.width_seed_models() == ["babypython"], "micro's controls.sae_seed"
    assert plan.width_file("seed_corr", 2, model="babypython") == plan.paths("control_corr", model="babypython")
    assert plan.widths_inputs()["ceiling"]["8"] == {"babypython": "results/flow/widths/x8/sae_seed/babypython/corr.npz"}
    assert plan.sae_at_width(8).expansion_factor == 8 and plan.sae_at_width(8).options["l1_coefficient"] == plan.sae.options["l1_coefficient"]
    assert {plan.paths("widths"), plan.paths("widths_png")} <= set(plan.targets())
    assert plan.widths_inputs()["metrics"]["2"]["lua"] == plan.paths("sae_metrics", model="lua")
    json.dumps(plan.widths_inputs()), json.dumps(plan.widths_spec())  # rule params: plain data
    assert load_plan(micro(widths=[2]), SCHEMA, REPO).trained_widths() == [], "only the own width: nothing to train"
    tuned = load_plan(micro(widths=[1, {"factor": 8, "l1_coefficient": 0.02}]), SCHEMA, REPO)
    assert tuned.widths() == [1, 2, 8] and tuned.sae_at_width(8).options["l1_coefficient"] == 0.02
    assert tuned.sae_at_width(1).options["l1_coefficient"] == tuned.sae.options["l1_coefficient"] == tuned.widths_spec()["l1_coefficients"]["2"]
    assert not any("widths" in t for t in load_plan(micro(), SCHEMA, REPO).targets())


def test_seed_controls_merge_siblings_and_imported_saes_stay_out_of_the_sweep():
    cfg = micro(widths=[4], merge_methods=["linear"])
    cfg["models"]["lua2"] = {"parent": "babypython", "train_on": ["lua"], "seed": 7, "control_of": "lua"}
    plan = load_plan(cfg, SCHEMA, REPO)
    assert "luastories-linear" in plan.lineage.order and "lua2" in plan.lineage.order
    assert plan.width_models() == ["babypython", "lua", "tinystories", "luastories"]
    assert "lua__luastories-linear" not in plan.width_edges() and "lua__lua2" not in plan.width_edges()


@pytest.mark.parametrize(("change", "message"), [
    ({"experiments": {"widths": [4, 4]}}, "experiments.widths"),
    ({"experiments": {"widths": [4, {"factor": 4, "l1_coefficient": 0.01}]}}, "x4 is listed twice"),
    ({"experiments": {"widths": [{"factor": 2, "l1_coefficient": 0.01}]}}, "x2 is the lineage's own width"),
    ({"experiments": {"widths": [{"factor": 8}]}}, "experiments.widths"),
    ({"experiments": {"widths": [0]}}, "experiments.widths"),
    ({"experiments": {"widths": [4]}, "threshold": "null-0.01", "controls": {"shuffle": {}}}, "needs a numeric threshold"),
    ({"experiments": {"widths": [4]}, "criterion": "decoder_cosine"}, "criterion 'decoder_cosine'"),
])
def test_bad_widths_are_one_line(change, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_plan({**micro(), **change}, SCHEMA, REPO)
    assert "\n" not in str(err.value)


def _planted(tmp_path, d_sae, fwd, bwd, active_a=None, active_b=None):
    from featureflow.flow import Matches, save_matches

    def cols(corr):
        corr = np.asarray(corr, dtype=np.float32)[:, None]
        return np.where(np.isnan(corr), -1, 0).astype(np.int32), corr

    (fi, fc), (bi, bc) = cols(fwd), cols(bwd)
    ones = np.ones(d_sae, dtype=bool)
    m = Matches(fi, fc, bi, bc, ones if active_a is None else np.asarray(active_a), ones if active_b is None else np.asarray(active_b), 100)
    path = tmp_path / f"corr{d_sae}_{len(list(tmp_path.glob('corr*')))}.npz"
    save_matches(path, m, {})
    return str(path)


def _metrics(tmp_path, name, d_sae, l0, explained_loss):
    """metrics.json of an SAE of `d_sae` features (a realistic width: the off-target rule scales with it)."""
    path = tmp_path / f"{name}_{d_sae}.json"
    path.write_text(json.dumps({"d_sae": d_sae, "l0": l0, "mse": 0.001, "explained_variance": 0.8,
                                "explained_loss": explained_loss, "dead_fraction": 0.0}))
    return str(path)


def test_shares_at_each_width_are_the_counts_of_a_naive_threshold(tmp_path):
    from featureflow.flow import WidthSpec, width_edge_rows, width_sae_rows

    rng = np.random.default_rng(0)
    corr = {2: (rng.uniform(0, 1, 4), rng.uniform(0, 1, 4)), 4: (rng.uniform(0, 1, 8), rng.uniform(0, 1, 8))}
    corr[4][0][:3] = [0.8, np.nan, 0.81]  # at the threshold is not above it; NaN never is
    inactive = np.ones(8, dtype=bool)
    inactive[1] = False
    spec = WidthSpec(widths=[2, 4], own=2, models=["a", "b"], edges=[{"source": "a", "target": "b", "kind": "finetune"}], threshold=0.8)
    files = {"2": {"a__b": _planted(tmp_path, 4, *corr[2])}, "4": {"a__b": _planted(tmp_path, 8, *corr[4], active_a=inactive)}}
    metrics = {"2": {"a": _metrics(tmp_path, "a", 2048, 30.0, 0.9), "b": _metrics(tmp_path, "b", 2048, 40.0, 0.9)},
               "4": {"a": _metrics(tmp_path, "a", 4096, 30.0, 0.95), "b": _metrics(tmp_path, "b", 4096, 900.0, -0.1)}}
    twin = {2: np.array([0.9, 0.5, np.nan, 0.85]), 4: rng.uniform(0.5, 1, 8)}  # a's features against its second SAE
    ceiling = {str(w): {"a": _planted(tmp_path, len(c), c, c)} for w, c in twin.items()}
    saes = width_sae_rows(spec, metrics, ceiling)
    rows = width_edge_rows(spec, files, saes).set_index("width")
    for w, (fwd, bwd) in corr.items():
        active = inactive if w == 4 else np.ones(4, dtype=bool)
        persisting = active & (np.nan_to_num(fwd, nan=-1) > 0.8)
        assert rows.loc[w, "persisting"] == persisting.sum() and rows.loc[w, "d_sae"] == len(fwd)
        assert rows.loc[w, "persisting_share"] == pytest.approx(persisting.mean(), abs=1e-4)
        assert rows.loc[w, "persisting_share_active"] == pytest.approx(persisting.sum() / active.sum(), abs=1e-4)
        assert rows.loc[w, "emerging_share"] == pytest.approx((bwd <= 0.8).mean(), abs=1e-4)
        naive_ceiling = (np.nan_to_num(twin[w], nan=-1) > 0.8).mean()
        assert saes.set_index(["model", "width"]).loc[("a", w), "seed_ceiling"] == pytest.approx(naive_ceiling, abs=1e-4)
        assert rows.loc[w, "share_of_ceiling"] == pytest.approx(persisting.sum() / active.sum() / naive_ceiling, abs=2e-3)
    assert rows.loc[4, "inactive_source"] == 1
    assert not rows.loc[2, "meets_targets"] and rows.loc[2, "far_off"] == "", "b's L0 40 misses 25-35, is not far off"
    assert rows.loc[4, "far_off"].startswith("b: L0 900.0 > 350 (10x the paper") and "explained loss -0.100 < 0" in rows.loc[4, "far_off"]
    a = saes.set_index(["model", "width"])
    assert a.loc[("a", 2), "meets_targets"] and a.loc[("a", 2), "own_width"] and not a.loc[("a", 4), "own_width"]
    assert a.loc[("b", 2), "missed"] == "L0 40.0 outside 25-35" and np.isnan(a.loc[("b", 2), "seed_ceiling"]), "b has no control"


def test_a_workflow_run_trains_only_the_new_width_and_agrees_with_classify_at_its_own(micro_run, tmp_path):
    """Widths [1] on the micro run (own width x2): only the x1 SAEs (and babypython's seed twin), their
    activations and correlations run; the table's x2 rows are classify's counts and ceiling; the x1 SAEs
    have d_sae = 1 x d_mlp."""
    from helpers import micro_lock

    wd = tmp_path / "wd"
    with micro_lock(micro_run[0]):
        shutil.copytree(micro_run[0], wd, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    extra = dump_yaml({"experiments": {"widths": [1]}, "figures": {"png": False}}, tmp_path / "widths.yaml")
    args = ("--configfile", str(REPO / "config/micro.yaml"), str(extra))
    before = {p: p.stat().st_mtime for p in (wd / "results/sae").rglob("*") if p.is_file()}
    run = snakemake_local(wd, *args, "--", "results/flow/widths.csv")
    assert run.returncode == 0, run.stderr[-3000:]
    ran = set(re.findall(r"^(?:local)?rule (\w+):", run.stderr, flags=re.M))
    assert ran == {"sae_width", "sae_width_eval", "width_acts", "width_corr", "sae_width_seed", "width_seed_acts",
                   "width_seed_corr", "widths"}, ran
    assert before == {p: p.stat().st_mtime for p in before}, "the lineage's own SAEs were not touched"
    table = pd.read_csv(wd / "results/flow/widths.csv")
    counts = pd.read_csv(wd / "results/flow/counts.csv")
    own = table[table["width"] == 2].set_index("edge")
    persisting = counts[counts["quantity"] == "source features persisting"].set_index("edge")
    assert own["persisting"].to_dict() == persisting["ours"].to_dict()
    cfg = json.loads((wd / "results/flow/widths/x1/sae/lua/cfg.json").read_text())
    assert cfg["d_sae"] == 64 == table.loc[table["width"] == 1, "d_sae"].iloc[0]
    saes = pd.read_csv(wd / "results/flow/widths_saes.csv")
    assert len(saes) == 8 and set(saes["width"]) == {1, 2}
    ceiling = counts[counts["quantity"].str.startswith("control: SAE seed ceiling")].set_index("model")["ours_share"]
    own_saes = saes[saes["width"] == 2].set_index("model")
    assert own_saes.loc["babypython", "seed_ceiling"] == pytest.approx(ceiling["babypython"], abs=1e-4)
    assert saes.loc[saes["model"] == "babypython", "seed_ceiling"].notna().all() and own_saes["seed_ceiling"].isna().sum() == 3
    again = snakemake_local(wd, *args, "-n", "--", "results/flow/widths.csv")
    assert "Nothing to be done" in again.stdout + again.stderr, "a rerun is a no-op"


def test_the_gpu_estimate_prices_every_job_the_experiments_add_to_the_paper_config():
    """benchmarks/experiments_estimate.py: added jobs from two dry runs of config/paper.yaml, the SAE step's
    cost scaled by width, and a total inside the hour the experiments may take on one GPU."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("experiments_estimate", REPO / "benchmarks/experiments_estimate.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.width_scale(16, 16, 0.5) == 1.0 and bench.width_scale(32, 16, 0.5) == 1.5 and bench.width_scale(8, 16, 0.5) == 0.75
    result = bench.estimate("h200", [8, 32], ["linear"])
    plan = load_plan({**yaml.safe_load((REPO / "config/paper.yaml").read_text()),
                      "experiments": {"widths": [8, 32], "merge_methods": ["linear"]}}, SCHEMA, REPO)
    rules = result["rules"]
    assert rules["sae_width"]["jobs"] == 2 * len(plan.width_models()) == rules["width_acts"]["jobs"]
    assert rules["width_corr"]["jobs"] == 2 * len(plan.width_edges())
    assert rules["sae_width_seed"]["jobs"] == 2 * len(plan.width_seed_models())
    assert rules["merge_sweep"]["jobs"] == 1 and rules["merge_path"]["jobs"] == 1
    assert rules["sae_width"]["node"] == "gpu" and rules["width_corr"]["node"] == "cpu" and rules["widths"]["minutes"] == 0
    assert 0 < result["total_minutes"] < 60 and result["within_target"]
