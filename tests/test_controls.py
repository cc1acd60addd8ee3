"""Yardsticks for "persisting" on planted data: the shuffle null, the seed-control rows, the threshold
curve, the `null-<rate>` threshold, and the config errors of the controls."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from featureflow.config import ConfigError
from featureflow.criteria import CRITERIA
from featureflow.flow.classes import classify
from featureflow.flow.controls import CURVE_THRESHOLDS, ControlFiles, persisting_share, threshold_curve
from featureflow.flow.correlate_numba import top_k_matches
from featureflow.flow.matches import save_matches
from featureflow.flow.null import (
    Shuffle,
    false_match_rate,
    null_best_partners,
    null_thresholds,
    parse_null_threshold,
    resolve_threshold,
    shifted_rows,
    threshold_at,
)
from featureflow.plan import load_plan
from featureflow.settings import CorrelationSettings, as_params
from helpers import SCHEMA, job_resources, lineage_config, write_corpora

CONTEXT, BLOCKS, FEATURES = 16, 400, 60
SETTINGS = CorrelationSettings(method="positional", top_k=2, engine="auto")
BLOCKS_OF_TOKENS = np.zeros((BLOCKS, CONTEXT), dtype=np.int64)


def planted_pair(seed: int = 0, copies: float = 0.4) -> tuple[sp.csr_matrix, sp.csr_matrix, int]:
    """Activations of two dictionaries over the same rows: the first `copies` share of B's features
    are A's features (shuffled order, slightly rescaled), the rest fire independently. Features
    fire in short runs along a context, as SAE features do."""
    rng = np.random.default_rng(seed)
    n = CONTEXT * BLOCKS

    def features(k: int) -> np.ndarray:
        starts = rng.random((n, k)) < 0.03
        runs = starts | np.roll(starts, 1, axis=0)  # runs of two positions
        return np.where(runs, rng.exponential(1.0, (n, k)), 0.0)

    x = features(FEATURES)
    n_copies = int(copies * FEATURES)
    y = np.concatenate([1.7 * x[:, :n_copies], features(FEATURES - n_copies)], axis=1)
    order = rng.permutation(FEATURES)
    return sp.csr_matrix(x), sp.csr_matrix(y[:, order]), n_copies


def test_shifted_rows_move_every_position_within_its_own_context():
    order = shifted_rows(CONTEXT * 5, CONTEXT, np.random.default_rng(0))
    blocks = order.reshape(5, CONTEXT)
    assert sorted(order) == list(range(CONTEXT * 5)), "a permutation"
    for b, row in enumerate(blocks):
        assert set(row // CONTEXT) == {b}, "rows stay in their context"
        shift = (row[0] - b * CONTEXT) % CONTEXT
        assert 1 <= shift < CONTEXT and np.array_equal(row, b * CONTEXT + (np.arange(CONTEXT) + shift) % CONTEXT)
    with pytest.raises(ValueError, match="cannot shift contexts of 1"):
        shifted_rows(10, 1, np.random.default_rng(0))


def test_best_partner_correlation_recovers_the_planted_copies_and_the_null_does_not():
    x, y, n_copies = planted_pair()
    m = top_k_matches(x, y, k=2)
    assert persisting_share(m, 0.8) == pytest.approx(n_copies / FEATURES), "the copies and nothing else"
    null = null_best_partners(x, y, BLOCKS_OF_TOKENS, SETTINGS, Shuffle(3, 0), job_resources())
    assert null["fwd"].shape == (3, FEATURES) and null["bwd"].shape == (3, FEATURES)
    assert np.nanmax(null["fwd"]) < 0.5, "shifted copies no longer match"
    assert threshold_at(null, 0.001) < 0.8


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_the_nulls_false_match_rate_holds_on_independent_dictionaries(rate):
    """Thresholds from the null of one independent pair keep the real false-match rate of fresh
    independent pairs near the rate (chance alone, the null's claim)."""
    x, y, _ = planted_pair(seed=1, copies=0.0)
    null = null_best_partners(x, y, BLOCKS_OF_TOKENS, SETTINGS, Shuffle(4, 0), job_resources())
    threshold = threshold_at(null, rate)
    assert false_match_rate(null, threshold) <= rate, "the threshold keeps its own null within the rate"
    real = []
    for seed in (2, 3, 4):
        a, b, _ = planted_pair(seed=seed, copies=0.0)
        m = top_k_matches(a, b, k=1)
        real += [persisting_share(m, threshold), persisting_share(m, threshold, side="target")]
    assert np.mean(real) <= 3 * rate + 0.01


def test_threshold_at_and_false_match_rate_agree_with_a_sorted_list():
    values = np.linspace(0.0, 0.999, 1000, dtype=np.float32)
    null = {"fwd": values[None, :500], "bwd": np.concatenate([values[500:], [np.nan]])[None, :]}
    assert threshold_at(null, 0.01) == pytest.approx(values[-11])  # ten values above it: 1% of 1000
    assert false_match_rate(null, threshold_at(null, 0.01)) == pytest.approx(0.01)
    assert null_thresholds(null)["n"] == 1000


def _planted_files(tmp_path):
    x, y, n_copies = planted_pair()
    base, control, _ = planted_pair(seed=5, copies=0.75)
    files = {"a__b": tmp_path / "a__b.npz", "a__c": tmp_path / "a__c.npz"}
    save_matches(files["a__b"], top_k_matches(x, y, k=2), {})
    save_matches(files["a__c"], top_k_matches(x, sp.csr_matrix(x.toarray()[:, ::-1]), k=2), {})
    save_matches(tmp_path / "ceiling.npz", top_k_matches(base, control, k=2), {})
    nulls = {}
    for edge in files:
        nulls[edge] = tmp_path / f"null_{edge}.npz"
        np.savez(nulls[edge], **null_best_partners(x, y, BLOCKS_OF_TOKENS, SETTINGS, Shuffle(1, len(edge)), job_resources()))
    controls = {"sae_seed": {"a": str(tmp_path / "ceiling.npz")}, "null": {k: str(v) for k, v in nulls.items()}}
    return files, controls, n_copies


SPEC = {"edges": [{"source": "a", "target": "b", "kind": "finetune"}, {"source": "a", "target": "c", "kind": "finetune"}],
        "inputs": {"a": [], "b": ["a"], "c": ["a"]}, "roots": ["a"]}


def test_counts_gain_control_rows_and_the_share_of_the_ceiling(tmp_path):
    files, controls, n_copies = _planted_files(tmp_path)
    counts = classify(corr_files=files, spec=SPEC, threshold=0.8, controls=controls, out_edges=tmp_path / "e.csv",
                      out_counts=tmp_path / "c.csv")
    ceiling = counts[counts["quantity"].str.startswith("control: SAE seed ceiling")]
    assert len(ceiling) == 1 and ceiling["ours_share"].iat[0] == pytest.approx(0.75)
    src = counts[(counts["quantity"] == "source features persisting") & (counts["edge"] == "a__b")].iloc[0]
    assert src["ours_share"] == pytest.approx(n_copies / FEATURES)
    assert src["share_of_ceiling"] == pytest.approx(src["ours_share"] / 0.75, abs=1e-3)
    nulls = counts[counts["quantity"].str.startswith("null:")]
    assert set(nulls["edge"]) == {"a__b", "a__c"} and (nulls["ours_share"] == 0).all()
    assert (nulls["null_threshold_0.1pct"] < 0.8).all()
    assert counts.loc[counts["quantity"] == "target features emerging", "share_of_ceiling"].isna().all()


def test_without_controls_counts_keep_todays_columns(tmp_path):
    files, _, _ = _planted_files(tmp_path)
    counts = classify(corr_files=files, spec=SPEC, threshold=0.8, controls={}, out_edges=tmp_path / "e.csv",
                      out_counts=tmp_path / "c.csv")
    assert list(pd.read_csv(tmp_path / "c.csv").columns) == ["threshold", "quantity", "model", "edge", "ours", "d_sae",
                                                             "ours_share", "paper", "paper_share"]
    assert not counts["quantity"].str.startswith(("control", "null")).any()


def test_a_null_threshold_is_the_largest_edge_threshold_and_reaches_the_classes(tmp_path):
    files, controls, _ = _planted_files(tmp_path)
    expected = max(threshold_at(dict(np.load(p)), 0.01) for p in controls["null"].values())
    assert resolve_threshold("null-0.01", controls["null"]) == pytest.approx(expected)
    counts = classify(corr_files=files, spec=SPEC, threshold="null-0.01", controls=controls, out_edges=tmp_path / "e.csv",
                      out_counts=tmp_path / "c.csv")
    assert counts["threshold"].iat[0] == pytest.approx(expected)
    with pytest.raises(ValueError, match="needs the shuffle null"):
        resolve_threshold("null-0.01", {})
    for bad in ("null-0", "null-1.5", "nul-0.1"):
        with pytest.raises(ValueError, match="config key 'threshold'"):
            parse_null_threshold(bad)


def test_threshold_curve_is_monotone_and_has_every_series(tmp_path):
    files, controls, _ = _planted_files(tmp_path)
    curve = threshold_curve(files, ControlFiles.from_dict(controls))
    assert set(curve["kind"]) == {"edge", "edge_target", "sae_seed", "shuffle_null"}
    for series, df in curve.groupby("series"):
        assert list(df["threshold"]) == list(CURVE_THRESHOLDS)
        assert (np.diff(df["share"].to_numpy()) <= 1e-12).all(), f"{series} rises with the threshold"
    at = curve[(curve["kind"] == "edge") & (curve["edge"] == "a__b")].set_index("threshold")["share"]
    assert at[0.8] == pytest.approx(0.4)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(controls={"sae_seed": {"models": ["nope"]}}), "controls.sae_seed.models': 'nope' is not a model"),
    (lambda c: c.update(controls={"sae_seed": {"seed": 0}}), "controls.sae_seed.seed': 0 is the run's seed"),
    (lambda c: c.update(controls={"shuffle": {"permutations": 0}}), "controls.shuffle.permutations"),
    (lambda c: c.update(threshold="null-0.001"), "threshold': 'null-0.001' needs the shuffle null"),
    (lambda c: c.update(threshold="auto"), "threshold"),
    (lambda c: c["models"].update(base2={"train_on": ["english", "python"], "seed": 0, "control_of": "babypython"}),
     "models.base2.seed': 0 is the seed of 'babypython'"),
    (lambda c: c["models"].update(base2={"train_on": ["english"], "seed": 3, "control_of": "ghost"}),
     "models.base2.control_of': 'ghost' is not a trained model"),
    (lambda c: c["models"].update(base2={"train_on": ["lua"], "seed": 3, "control_of": "babypython"}),
     "models.base2.train_on': a seed control of 'babypython' must have its train_on"),
    (lambda c: c.update(criterion="cosine"), "config key 'criterion': 'cosine' is not one of"),
    (lambda c: c.update(criterion="decoder_cosine", threshold="null-0.01", controls={"shuffle": {}}),
     "threshold': 'null-0.01' is a threshold on activation correlations; criterion 'decoder_cosine' needs a number"),
])
def test_bad_controls_are_one_line_naming_the_key(change, message, tmp_path):
    write_corpora(tmp_path)
    cfg = lineage_config()
    change(cfg)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_plan(cfg, SCHEMA, workdir=tmp_path)


def test_a_model_seed_control_gets_a_control_edge_and_no_lineage_edge(tmp_path):
    write_corpora(tmp_path)
    cfg = lineage_config()
    cfg["models"]["base2"] = {"train_on": ["english", "python"], "seed": 7, "control_of": "babypython"}
    cfg["controls"] = {"sae_seed": {}, "shuffle": {}}
    plan = load_plan(cfg, SCHEMA, workdir=tmp_path)
    assert "base2" not in plan.lineage.roots and all("base2" not in e for e in plan.edge_names())
    assert plan.control_edge_names() == ["babypython__base2"]
    assert plan.model_seed("base2") == 7 and plan.model_seed("babypython") == plan.seed
    files = plan.control_files()
    assert files["model_seed"] == {"babypython__base2": plan.paths("corr", edge="babypython__base2")}
    assert set(files["null"]) == set(plan.edge_names())
    assert plan.sae_seed_models() == ["babypython", "luastories"], "default: the root and the last model"
    assert set(plan.control_inputs()) <= set(plan.targets())


def test_criteria_files_follow_the_criterion_and_the_comparison_switch(tmp_path):
    write_corpora(tmp_path)
    cfg = lineage_config()
    plan = load_plan(cfg, SCHEMA, workdir=tmp_path)
    assert plan.classify_files() == plan.correlation_files() and list(plan.criteria_files()) == ["best_partner"]
    cfg["criterion"], cfg["controls"] = "decoder_cosine", {"compare_criteria": True}
    plan = load_plan(cfg, SCHEMA, workdir=tmp_path)
    assert plan.classify_files() == {e: plan.paths("decoder_cosine", edge=e) for e in plan.edge_names()}
    assert list(plan.criteria_files()) == list(CRITERIA)
    assert plan.paths("criteria") in plan.targets()
    browser = plan.browser_files()  # the browser classifies as classify does and shows the other criteria
    assert browser.corr == plan.classify_files() and "decoder_cosine" not in browser.criteria
    assert set(browser.criteria["one_to_one"]) == set(plan.edge_names()) and browser.null == {}


def test_shared_sae_seeds_are_the_run_seed_and_per_model_ones_are_distinct_stable_and_apart_from_the_ceiling(tmp_path):
    write_corpora(tmp_path)
    cfg = lineage_config(seed=3, controls={"sae_seed": {"seed": 5}})
    shared = load_plan(cfg, SCHEMA, workdir=tmp_path)
    models = shared.lineage.order
    assert shared.config["sae"]["seeds"] == "shared", "the default is today's behaviour"
    assert {shared.sae_seed(m) for m in models} == {3} and {shared.sae_seed_control_seed(m) for m in models} == {5}
    cfg["sae"] = {"seeds": "per_model"}
    per_model = load_plan(cfg, SCHEMA, workdir=tmp_path)
    seeds = {m: per_model.sae_seed(m) for m in models}
    assert len(set(seeds.values())) == len(models) and 3 not in seeds.values(), seeds
    assert seeds["babypython"] == 3 ^ 2208826105, "seed XOR crc32 of the name: the same on every run and machine"
    assert seeds == {m: load_plan(cfg, SCHEMA, workdir=tmp_path).sae_seed(m) for m in models}
    controls = {m: per_model.sae_seed_control_seed(m) for m in models}
    assert not set(controls.values()) & set(seeds.values()), "a second SAE never starts where a lineage SAE does"
    assert len(set(controls.values())) == len(models)
    # the seed mode reaches the jobs' seed alone: the SAE settings (and so every SAE job's other params) stay as they were
    assert as_params(per_model.sae) == as_params(shared.sae) and "seeds" not in as_params(shared.sae)


def test_per_model_sae_seeds_refuse_two_saes_on_one_seed(tmp_path):
    write_corpora(tmp_path)
    # c ^ crc(babypython) == 0 ^ crc(lua): babypython's second SAE would start from lua's SAE seed
    cfg = lineage_config(controls={"sae_seed": {"seed": 2208826105 ^ 3597743915}})
    load_plan(cfg, SCHEMA, workdir=tmp_path)  # shared: the run's seed and another one
    cfg["sae"] = {"seeds": "per_model"}
    with pytest.raises(ConfigError, match="config key 'sae.seeds': per_model gives seed for 'lua' and "
                                          "controls.sae_seed.seed for 'babypython' the same SAE seed"):
        load_plan(cfg, SCHEMA, workdir=tmp_path)
