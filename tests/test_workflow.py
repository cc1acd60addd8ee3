"""The workflow through Snakemake itself, on the micro config: outputs, reruns, bad input."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from featureflow.flow import load_acts, load_matches
from featureflow.lm import load_model
from featureflow.sae import load_sae, mlp_hook_post
from helpers import REPO, chromium_url, dump_yaml, micro_lock
from helpers import snakemake_local as snakemake

MICRO = REPO / "config" / "micro.yaml"


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "data").symlink_to(REPO / "data")
    return tmp_path


def test_micro_workflow_builds_tokenizer_tokens_and_mixtures(micro_run):
    wd, _ = micro_run
    res = wd / "results"
    meta = json.loads((res / "data/tokenizer/tokenizer_meta.json").read_text())
    assert meta["vocab_size"] == 512
    rows = (res / "data/tokens/summary.tsv").read_text().strip().split("\n")
    assert len(rows) == 1 + 4 * 2
    for corpus in ("english", "python", "lua", "stories"):
        for split in ("train", "validation"):
            counts = json.loads((res / f"data/tokens/{corpus}/{split}.json").read_text())
            assert counts["tokens"] > counts["documents"] > 0
    mix = json.loads((res / "data/mixtures/babypython/train.json").read_text())
    taken = mix["tokens_per_corpus"]
    assert set(taken) == {"english", "python"}
    assert abs(taken["english"] - taken["python"]) / max(taken.values()) < 0.05, taken
    lua_mix = json.loads((res / "data/mixtures/lua/train.json").read_text())
    assert lua_mix["tokens_per_corpus"] == {"lua": json.loads((res / "data/tokens/lua/train.json").read_text())["tokens"]}
    for log in ("data/corpus/lua.log", "data/tokenizer.log", "data/tokens/lua_train.log", "lm/train/lua.log"):
        assert (res / "logs" / log).exists()


def test_micro_models_learn_and_fine_tunes_win_on_their_domain(micro_run):
    wd, _ = micro_run
    rows = [line.split("\t") for line in (wd / "results/lm/eval.tsv").read_text().strip().split("\n")[1:]]
    loss = {(model, corpus): float(value) for model, corpus, value, _, _ in rows}
    for corpus in ("english", "python", "lua", "stories"):
        assert loss[("babypython", corpus)] < loss[("unigram[babypython data]", corpus)] - 0.2, corpus
    assert loss[("lua", "lua")] < loss[("babypython", "lua")] - 0.1
    assert loss[("tinystories", "stories")] < loss[("babypython", "stories")] - 0.1
    for model in ("babypython", "lua", "tinystories"):
        meta = json.loads((wd / f"results/lm/{model}/train_meta.json").read_text())
        assert meta["resumed_from_step"] == 0 and meta["steps"] > 0
    from transformers import AutoModelForCausalLM

    lua = AutoModelForCausalLM.from_pretrained(str(wd / "results/lm/lua"))
    assert lua.config.intermediate_size == 64 and lua.config.num_hidden_layers == 1


def test_micro_merge_sweep_choice_and_merged_model(micro_run):
    import pandas as pd

    wd, _ = micro_run
    res = wd / "results"
    sweep = pd.read_csv(res / "merge/luastories/sweep.csv")
    choice = json.loads((res / "merge/luastories/choice.json").read_text())
    summary = json.loads((res / "merge/luastories/sweep.json").read_text())
    assert {0.0, 0.25, 0.5, 0.75, 1.0} <= set(sweep["t"].round(6))
    assert 0.0 <= choice["t"] <= 1.0 and choice["t_from"] == "sweep equilibrium"
    assert choice["t"] == summary["equilibrium_t"]
    # the sweep's endpoints are the inputs themselves, measured on the same blocks
    assert sweep.loc[sweep.t == 0.0, "lua_accuracy"].item() == pytest.approx(choice["input_accuracy"]["lua"], abs=1e-6)
    assert sweep.loc[sweep.t == 1.0, "tinystories_accuracy"].item() == pytest.approx(choice["input_accuracy"]["tinystories"], abs=1e-6)
    if summary["crossed"]:
        gap = abs(choice["merged_accuracy"]["lua"] - choice["merged_accuracy"]["tinystories"])
        assert gap < 0.02, choice
    for name in ("fig5_merge_sweep.png", "fig5_merge_sweep.html"):
        assert (res / "merge/luastories" / name).stat().st_size > 10_000
    assert (res / "lm/luastories/tokenizer.json").exists()
    evals = json.loads((res / "lm/luastories/eval.json").read_text())
    assert set(evals) == {"english", "python", "lua", "stories"}


def test_micro_saes_are_saelens_folders_with_metrics(micro_run):
    wd, _ = micro_run
    res = wd / "results/sae"
    rows = (res / "metrics.tsv").read_text().strip().split("\n")
    assert [r.split("\t")[0] for r in rows[1:]] == ["babypython", "lua", "tinystories", "luastories", "paper target"]
    for model in ("babypython", "luastories"):
        cfg = json.loads((res / model / "cfg.json").read_text())
        assert (cfg["d_in"], cfg["d_sae"]) == (64, 128)
        assert cfg["metadata"]["model_name"] == model and cfg["metadata"]["hook_name"] == "blocks.0.mlp.hook_post"
        metrics = json.loads((res / model / "metrics.json").read_text())
        assert 0 < metrics["l0"] < 128 and metrics["ce_zero_ablated"] > metrics["ce_clean"]
        assert metrics["explained_variance"] > 0.3, metrics
        assert (res / model / "feature_density.png").stat().st_size > 10_000
    data = json.loads((res / "luastories/featureflow_sae.json").read_text())["model_dir"]
    assert data.endswith("lm/luastories")


def test_second_run_with_nothing_changed_runs_nothing(micro_run):
    wd, _ = micro_run
    with micro_lock(wd):
        again = snakemake(wd, "--configfile", str(MICRO))
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def planned_reruns(wd, cfg: dict, name: str) -> dict[str, int]:
    """Rule -> jobs that Snakemake would run for config `cfg` in the run folder `wd` (a dry run)."""
    dry = snakemake(wd, "--configfile", str(dump_yaml(cfg, wd / f"{name}.yaml")), "-n", "--quiet", "rules")
    assert dry.returncode == 0, dry.stderr
    job_lines = [line.split() for line in dry.stdout.splitlines() if line.split()[:1] and line.split()[0].isidentifier()]
    rerun = {parts[0]: int(parts[1]) for parts in job_lines if len(parts) == 2 and parts[1].isdigit()}
    rerun.pop("total", None)
    return rerun


def test_changing_a_corpus_setting_reruns_that_corpus_and_below_only(micro_run):
    wd, _ = micro_run
    cfg = yaml.safe_load(MICRO.read_text())
    cfg["corpora"]["lua"]["max_bytes"] = 80000
    rerun = planned_reruns(wd, cfg, "changed")
    # lua's text changes: its tokens, its mixture, the lua model, and every evaluation (lua validation
    # changed); the tokenizer (trained on the base corpora) and the other models stay.
    assert rerun == {"all": 1, "corpus": 1, "tokens": 2, "mixture": 2, "token_summary": 1, "train": 1,
                     "evaluate": 4, "eval_table": 1, "lm_curves": 1, "merge_sweep": 1, "merge": 1,
                     "sae": 2, "sae_eval": 2, "sae_table": 1, "sae_curves": 1,
                     # the common sample draws from lua's tokens too: every model's activations and edge
                     "common_sample": 1, "feature_acts": 4, "correlate": 4, "classify": 1, "sankey": 1,
                     "feature_stats": 4, "case_studies": 1, "browser": 1, "interp_estimate": 1, "report": 1,
                     # and the controls built on them: the seed-control SAE's activations, its correlation,
                     # the null of every edge and the threshold curve
                     "control_acts": 1, "sae_seed_corr": 1, "null": 4, "threshold_curve": 1,
                     # and the other matching criteria: one-to-one on every edge, decoder cosines where lua's
                     # or luastories' SAE is one side, and their comparison
                     "one_to_one": 4, "decoder_cosine": 3, "criteria": 1}


def test_switching_the_criterion_reclassifies_from_stored_matches_only(micro_run):
    wd, _ = micro_run
    cfg = yaml.safe_load(MICRO.read_text())
    cfg["criterion"] = "one_to_one"
    # the browser too: its pages classify with the matches classify used
    assert planned_reruns(wd, cfg, "criterion") == {"classify": 1, "sankey": 1, "case_studies": 1, "criteria": 1,
                                                    "browser": 1, "interp_estimate": 1, "report": 1, "all": 1}
    criteria = pd.read_csv(wd / "results/flow/criteria.csv")
    assert set(criteria["criterion"]) == {"best_partner", "one_to_one", "decoder_cosine"}
    assert (criteria["threshold"] == 0.8).all() and criteria["jaccard_with_best_partner"].between(0, 1).all()
    ours = criteria[criteria["criterion"] == "best_partner"].set_index("edge")["pairs"]
    counts = pd.read_csv(wd / "results/flow/counts.csv")
    persisting = counts[counts["quantity"] == "source features persisting"].set_index("edge")["ours"]
    assert ours.sort_index().tolist() == persisting.sort_index().tolist(), "best-partner pairs are classify's persisting"
    for edge in ours.index:  # one-to-one never gives a feature two partners
        o2o, _ = load_matches(wd / f"results/flow/one_to_one/{edge}.npz")
        matched = o2o.fwd_idx[:, 0][o2o.fwd_idx[:, 0] >= 0]
        assert len(set(matched.tolist())) == len(matched)


@pytest.mark.parametrize("block, key, value, expected", [
    # how autointerp talks to its endpoint changes no output; the prompts' sizes change the estimate
    ("interp", "concurrency", 7, {}),
    ("interp", "timeout_s", 99.0, {}),
    ("interp", "max_tokens_explain", 41, {"interp_estimate": 1, "report": 1, "all": 1}),
    # the browser's own settings rerun the browser alone, not the statistics it reads
    ("analysis", "browser_window", 3, {"browser": 1, "report": 1, "all": 1}),
    ("analysis", "top_tokens", 4, {"feature_stats": 4, "case_studies": 1, "browser": 1, "interp_estimate": 1, "report": 1,
                                   "all": 1}),
    # a case-study setting reruns the case studies, not the statistics
    ("analysis.case_studies", "contexts", 2, {"case_studies": 1, "report": 1, "all": 1}),
    # dropping the PNGs reruns only the landing page's report (no thumbnails); no figure is drawn again
    ("figures", "png", False, {"report": 1, "all": 1}),
])
def test_a_setting_reruns_exactly_the_jobs_whose_outputs_it_changes(micro_run, block, key, value, expected):
    wd, _ = micro_run
    cfg = yaml.safe_load(MICRO.read_text())
    node = cfg
    for part in block.split("."):
        node = node.setdefault(part, {})
    node[key] = value
    assert planned_reruns(wd, cfg, f"{block}-{key}") == expected


def test_micro_feature_acts_correlations_and_flow(micro_run):
    wd, _ = micro_run
    res = wd / "results"
    sample = np.load(res / "flow/sample.npz")
    blocks, corpora = sample["blocks"], list(sample["corpora"])
    assert blocks.shape == (6000 // 24, 24) and set(corpora) == {"english", "python", "lua", "stories"}
    for i in (0, 77, len(blocks) - 1):  # every block is where the sample says it comes from
        train = np.load(res / f"data/tokens/{corpora[sample['corpus'][i]]}/train.npy")
        np.testing.assert_array_equal(blocks[i], train[sample["start"][i]:sample["start"][i] + 24])
    acts, tokens, meta = load_acts(res / "flow/acts/lua.npz")
    assert acts.shape == (6000, 128) and meta == {"model": "lua", "sample": str(sample["digest"])}
    np.testing.assert_array_equal(tokens, blocks.reshape(-1))
    assert (acts.data > 0).all() and 5 < acts.nnz / acts.shape[0] < 128
    with torch.no_grad():  # rows are the SAE features of the sample's positions, block-major
        lm = load_model(res / "lm/lua")
        hook = mlp_hook_post(lm, torch.from_numpy(blocks[:3].astype(np.int64)), "blocks.0.mlp.hook_post").flatten(0, 1)
        direct = load_sae(res / "sae/lua").encode(hook).numpy()
    np.testing.assert_allclose(acts[:72].toarray(), direct, atol=1e-5)
    edges = pd.read_csv(res / "flow/edges.csv")
    assert list(edges["edge"].unique()) == ["babypython__lua", "babypython__tinystories", "lua__luastories", "tinystories__luastories"]
    assert len(edges) == 4 * 2 * 128
    for name, rows in edges.groupby("edge"):
        m, meta = load_matches(res / f"flow/corr/{name}.npz")
        assert meta["method"] == "positional" and m.fwd_idx.shape == (128, 2)
        src = rows[rows["side"] == "source"].sort_values("feature")
        assert ((src["class"] == "persisting") == (np.nan_to_num(m.fwd_corr[:, 0]) > 0.8)).all()
    counts = pd.read_csv(res / "flow/counts.csv")
    assert set(counts["threshold"]) == {0.8}
    assert counts.dropna(subset=["paper"])["paper"].astype(int).tolist() == [959, 1210, 729, 481]
    assert (res / "flow/fig2_sankey.png").stat().st_size > 20_000


def test_micro_case_studies_and_browser(micro_run):
    wd, _ = micro_run
    res = wd / "results"
    found = json.loads((res / "analysis/case_studies.json").read_text())
    a, b = found["persisting"], found["disappearing"]
    assert found["threshold"] == 0.8 and a["hypothesis"] == "assignment" and b["hypothesis"] == "exception"
    table = pd.read_csv(res / "analysis/babypython/features.csv")
    edges = pd.read_csv(res / "flow/edges.csv")
    if a["found"]:  # the chosen feature persists and has the highest "=" LLR among the persisting ones
        start = a["models"][0]
        persisting = edges[(edges["model"] == "babypython") & (edges["side"] == "source") & (edges["class"] == "persisting")]
        assert start["feature"] in set(persisting["feature"])
        assert start["llr"] == pytest.approx(table.set_index("feature").loc[persisting["feature"], "llr_assignment"].max(), abs=1e-4)
        assert [m["model"] for m in a["models"]] == ["babypython", "lua", "tinystories", "luastories"]
    if b["found"]:
        assert b["feature"]["llr"] == pytest.approx(table["llr_exception"].max(), abs=1e-4)
    else:  # the micro tokenizer has no "except" token, or no feature fires on it: said so, not guessed
        assert table["llr_exception"].isna().all() and "no babypython feature" in b["reason"]
    for fig in ("fig3_persisting_feature", "fig4_disappearing_feature"):
        assert "<script" not in (res / f"analysis/{fig}.html").read_text()
    dom, log = chromium_url((res / "browser/lua/index.html").as_uri())
    assert "CONSOLE" not in log, log
    assert "Features of lua (128)" in dom and dom.count('href="feature.html#') >= 128
    dom, log = chromium_url((res / "browser/lua/feature.html").as_uri() + "#5")
    assert "CONSOLE" not in log, log
    links = re.findall(r'href="\.\./(\w+)/feature\.html#(\d+)"', dom)
    assert {m for m, _ in links} == {"babypython", "luastories"}  # its parent and its child
    assert "beyond the null (0.1%)" in dom and "(null at 0." in dom, "the null's verdict per edge"
    assert "one_to_one: " in dom and "decoder_cosine: " in dom, "the other criteria per edge"
    assert all((res / f"browser/{m}/feature.html").exists() and int(f) < 128 for m, f in links)


def test_changing_the_threshold_reruns_classify_and_below_only(micro_run):
    wd, _ = micro_run
    with micro_lock(wd):
        check_threshold_rerun(wd)


def check_threshold_rerun(wd):
    before = pd.read_csv(wd / "results/flow/edges.csv")
    corr_mtime = (wd / "results/flow/corr/babypython__lua.npz").stat().st_mtime
    run = snakemake(wd, "--configfile", str(MICRO), "--config", "threshold=0.5")
    assert run.returncode == 0, run.stderr[-3000:]
    ran = sorted(set(re.findall(r"\(Rule: (\w+)\)", run.stderr + run.stdout)))
    assert ran == ["all", "browser_threshold", "case_studies", "classify", "criteria", "interp_estimate", "report", "sankey"], ran
    assert (wd / "results/flow/corr/babypython__lua.npz").stat().st_mtime == corr_mtime
    after = pd.read_csv(wd / "results/flow/edges.csv")
    assert (after["class"] == "persisting").sum() > (before["class"] == "persisting").sum()
    assert set(pd.read_csv(wd / "results/flow/counts.csv")["threshold"]) == {0.5}
    again = snakemake(wd, "--configfile", str(MICRO), "--config", "threshold=0.5")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    back = snakemake(wd, "--configfile", str(MICRO))  # leave the module's run as it was
    assert back.returncode == 0 and pd.read_csv(wd / "results/flow/edges.csv").equals(before)


def test_fifth_model_is_config_lines_only(workdir):
    cfg = yaml.safe_load(MICRO.read_text())
    cfg["models"]["lua_v2"] = {"parent": "lua", "train_on": ["lua", "stories"]}
    dry = snakemake(workdir, "--configfile", str(dump_yaml(cfg, workdir / "five.yaml")), "-n")
    assert dry.returncode == 0, dry.stderr
    assert "results/data/mixtures/lua_v2/train.npy" in dry.stdout
    assert "results/flow/corr/lua__lua_v2.npz" in dry.stdout and "results/flow/acts/lua_v2.npz" in dry.stdout


@pytest.mark.parametrize(
    "change, message",
    [
        ({"threshold": "high"}, "config error: config key 'threshold': 'high' does not match"),
        ({"sae_size": 3}, "config error: unknown config key 'sae_size'"),
        ({"models": {"a": {"train_on": ["english"]}, "b": {"parent": "c", "train_on": ["lua"]}}},
         "config error: config key 'models.b.parent': 'c' is not a model"),
        ({"models": {"a": {"train_on": ["english"]}, "b": {"parent": "c", "train_on": ["lua"]},
                     "c": {"parent": "b", "train_on": ["lua"]}}},
         "config error: config key 'models' has a cycle in the lineage: b -> c -> b"),
        ({"models": {"a": {"train_on": ["english"]}, "m": {"merge": ["a", "z"]}}},
         "config error: config key 'models.m.merge': 'z' is not a model"),
        ({"corpora": {"english": {"files": ["data/missing.txt"]}}, "models": {"a": {"train_on": ["english"]}}},
         "config error: corpus 'english': file 'data/missing.txt' does not exist"),
    ],
)
def test_bad_config_stops_before_any_job_with_one_line(workdir, change, message):
    cfg = yaml.safe_load(MICRO.read_text())
    if "models" in change:
        cfg.pop("controls")  # the micro controls name micro's models
    cfg.update(change)
    run = snakemake(workdir, "--configfile", str(dump_yaml(cfg, workdir / "bad.yaml")))
    assert run.returncode != 0
    assert message in run.stderr.splitlines() or any(line.startswith(message) for line in run.stderr.splitlines()), run.stderr
    assert not (workdir / "results").exists()


def test_non_utf8_corpus_fails_in_its_rule_and_keeps_other_outputs(workdir):
    bad = workdir / "bad.txt"
    bad.write_bytes(b"print('ok')\n\x1e\nprint('caf\xe9')\n")
    cfg = yaml.safe_load(MICRO.read_text())
    cfg["corpora"]["lua"]["files"] = ["bad.txt"]
    targets = ["results/data/corpora/lua/train.txt", "results/data/tokens/english/train.npy"]
    run = snakemake(workdir, "--configfile", str(dump_yaml(cfg, workdir / "c.yaml")), "--keep-going", *targets)
    assert run.returncode != 0
    assert "error: bad.txt: not valid UTF-8 (byte 0xe9 at offset 24)" in run.stderr.splitlines()
    assert not (workdir / "results/data/corpora/lua/train.txt").exists()
    assert (workdir / "results/data/tokens/english/train.npy").exists(), "independent jobs still finish"
