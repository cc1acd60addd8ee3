"""Training curves: figures from real training logs, from a log still being written, the CLI that
follows a running job, optional TensorBoard events, and the rules in the workflow."""

import json
import logging
import os
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from featureflow.curves import curves_figure, draw_curves, find_logs, read_log, redraw
from featureflow.data import build_tokenizer, tokenize_split
from featureflow.paths import ResultPaths
from featureflow.runtime import TrainLog
from featureflow.settings import TokenizerSettings
from helpers import DOC_SEP, REPO, WORDS, call_sae, call_train, settings, snakemake_local

MICRO = REPO / "config" / "micro.yaml"
SHAPE = {"d_model": 32, "d_mlp": 64, "n_heads": 2, "n_layers": 1, "block_size": 32}
SAE_RECIPE = {"expansion_factor": 2, "tokens": 24 * 16 * 30, "batch_blocks": 16, "lr": 3e-3, "l1_coefficient": 5e-3,
              "l1_warmup_fraction": 0.5, "normalize": "unit_rms", "buffer_tokens": 24 * 16 * 10, "log_every": 5}


def lm_kwargs(root, name, tokens, parent=None, log_every=5):
    """helpers.call_train arguments that write into a results tree under `root` as the workflow does."""
    p = ResultPaths(str(root / "results"))
    return dict(name=name, mixture_npy=str(root / "train.npy"), tokenizer_dir=str(root / "tok"), out_dir=p("model_dir", model=name),
                train_log=p("train_log", model=name), train_meta=p("train_meta", model=name),
                ckpt_dir=p("lm_checkpoints", model=name),
                settings={"architecture": SHAPE, "schedule": {"tokens": tokens, "batch_size": 8, "lr": 3e-3, "warmup_steps": 3},
                          "checkpoint_every": 1000, "log_every": log_every},
                seed=0, resources={"device": "cpu", "threads": 2},
                parent_dir=p("model_dir", model=parent) if parent else None, parent=parent)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A results tree with a model from scratch, its fine-tune and the fine-tune's SAE, trained for real."""
    root = tmp_path_factory.mktemp("curves")
    rng = np.random.default_rng(0)
    docs = [" ".join(WORDS[list(WORDS)[i % 4]][j] for j in rng.integers(0, 10, 60)) for i in range(200)]
    (root / "train.txt").write_text(DOC_SEP.join(docs))
    build_tokenizer(settings(TokenizerSettings, vocab_size=300), [root / "train.txt"], root / "tok")
    tokenize_split(root / "train.txt", root / "tok", root / "train.npy", root / "train.json")
    call_train(lm_kwargs(root, "base", 8 * 32 * 30))
    call_train(lm_kwargs(root, "ft", 8 * 32 * 15, parent="base"))
    p = ResultPaths(str(root / "results"))
    call_sae(dict(name="ft", model_dir=p("model_dir", model="ft"), token_files=[str(root / "train.npy")],
                  out_dir=p("sae_dir", model="ft"), train_log=p("sae_train_log", model="ft"),
                  ckpt_dir=p("sae_checkpoints", model="ft"), settings=SAE_RECIPE, seed=0,
                  resources={"device": "cpu", "threads": 2}))
    return root


def logs_and_done(root, stage):
    p = ResultPaths(str(root / "results"))
    logs = find_logs(root / "results", stage)
    done_key = {"lm": "train_meta", "sae": "sae_extra"}[stage]
    return logs, {m: p(done_key, model=m) for m in logs}


def traces(fig, panel):
    """{legend label: (x, y)} of the subplot titled `panel`."""
    k = [a.text for a in fig.layout.annotations].index(panel)
    axis = "x" if k == 0 else f"x{k + 1}"
    return {t.name: (list(t.x), list(t.y)) for t in fig.data if t.xaxis == axis}


def test_lm_figure_has_every_model_from_its_real_training_log(trained):
    logs, done = logs_and_done(trained, "lm")
    assert list(logs) == ["base", "ft"]
    fig = curves_figure("lm", logs, done)
    loss = traces(fig, "training loss (cross-entropy, nats per token)")
    assert set(loss) == {"base (from scratch)", "ft (fine-tune of base)"}
    for model, label in (("base", "base (from scratch)"), ("ft", "ft (fine-tune of base)")):
        rows = read_log(logs[model])
        steps = json.loads(Path(done[model]).read_text())["steps"]
        assert loss[label][0] == rows["step"].tolist() and rows["step"].iloc[-1] == steps
        assert loss[label][1] == rows["loss"].tolist()
    base_loss = loss["base (from scratch)"][1]
    assert base_loss[-1] < base_loss[0] - 0.5, "the model learned"
    lr = traces(fig, "learning rate")["base (from scratch)"][1]
    assert lr[-1] < max(lr), "cosine decay"
    assert "still running" not in fig.layout.title.text


def test_sae_figure_has_loss_mse_l0_and_dead_share(trained):
    logs, done = logs_and_done(trained, "sae")
    fig = curves_figure("sae", logs, done)
    rows = read_log(logs["ft"])
    assert len(rows) == 30 // 5
    assert traces(fig, "training loss (as logged)")["ft"][1] == rows["loss"].tolist(), "the loss training logged, not rebuilt"
    # standard: the loss minimised is MSE + lambda * L1. After the L1 warm-up (half of the 30 steps) lambda is constant and the
    # window means add up; during it each step had a smaller lambda than the row's last one, which a rebuilt loss would use.
    rebuilt = rows["mse"] + rows["l1_coefficient"] * rows["l1"]
    warm = rows["step"] <= 15
    np.testing.assert_allclose(rows["loss"][~warm], rebuilt[~warm], rtol=1e-4)
    assert (rows["loss"][warm] < rebuilt[warm]).all()
    assert traces(fig, "L0 (features active per token)")["ft"][1] == rows["l0"].tolist()
    dead = traces(fig, "dead share of features")["ft"][1]
    assert all(0 <= d <= 1 for d in dead)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis3.type != "log"


def test_sae_log_axes_tick_powers_of_ten_only_over_a_decade_or_more(tmp_path):
    """Over a decade or more a log axis ticks powers of ten only (plotly's default adds 2 and 5 of every
    decade, labelled by that digit alone); over less it keeps plotly's ticks, labelled in full."""
    steps = np.arange(1, 11)
    mse = np.geomspace(1.0, 0.005, 10)  # over two decades; the loss (+ 0.1 x 5) from 1.5 to 0.505, under one
    rows = ["step,mse,l1,l1_coefficient,l0,dead_fraction"] + [f"{s},{m:.6g},5,0.1,{30 - s},0.0" for s, m in zip(steps, mse, strict=True)]
    (tmp_path / "train_log.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "done.json").write_text("{}")
    fig = curves_figure("sae", {"m": tmp_path / "train_log.csv"}, {"m": tmp_path / "done.json"})
    assert (fig.layout.yaxis.type, fig.layout.yaxis.dtick) == ("log", None)   # the loss
    assert (fig.layout.yaxis2.type, fig.layout.yaxis2.dtick) == ("log", 1)    # the MSE


def test_figures_are_written_as_html_and_png(trained, tmp_path):
    for stage in ("lm", "sae"):
        logs, done = logs_and_done(trained, stage)
        draw_curves(stage, logs, done, tmp_path / f"{stage}.html", tmp_path / f"{stage}.png")
        assert (tmp_path / f"{stage}.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / f"{stage}.png").stat().st_size > 20_000
        assert "plotly" in (tmp_path / f"{stage}.html").read_text()[:100_000]


def test_a_log_cut_mid_line_draws_its_complete_rows_and_says_running(trained, tmp_path):
    full = (trained / "results/lm/base/train_log.csv").read_text()
    lines = full.splitlines(keepends=True)
    cut = "".join(lines[:4]) + lines[4][: len(lines[4]) // 2]  # header, 3 rows and half of the 4th
    (tmp_path / "base").mkdir()
    (tmp_path / "base/train_log.csv").write_text(cut)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/train_log.csv").write_text(lines[0][:10])  # not even the whole header yet
    rows = read_log(tmp_path / "base/train_log.csv")
    assert rows["step"].tolist() == [5, 10, 15]
    logs = {"base": tmp_path / "base/train_log.csv", "empty": tmp_path / "empty/train_log.csv"}
    fig = curves_figure("lm", logs, {m: tmp_path / m / "train_meta.json" for m in logs})
    loss = traces(fig, "training loss (cross-entropy, nats per token)")
    assert loss["base (running)"][0] == [5, 10, 15] and loss["empty (running)"][0] == []
    assert fig.layout.title.text.endswith("still running: base at step 15, empty (no rows yet)")
    assert [t.line.dash for t in fig.data if t.name == "base (running)"] == ["dot", "dot"]


def test_cli_follows_a_running_training_job(trained, tmp_path):
    """The log grows while the job runs; the CLI draws what is there and marks the job running."""
    root = tmp_path
    for name in ("tok", "train.npy"):
        (root / name).symlink_to(trained / name)
    kw = lm_kwargs(root, "slow", 8 * 32 * 4000, log_every=2)
    code = (f"import json, sys; sys.path.insert(0, {str(REPO / 'src')!r}); sys.path.insert(0, {str(REPO / 'tests')!r}); "
            "from helpers import call_train; call_train(json.loads(sys.argv[1]))")
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(kw)], stderr=subprocess.DEVNULL)
    log = root / "results/lm/slow/train_log.csv"
    try:
        deadline = time.time() + 120
        while (not log.exists() or len(read_log(log)) < 3) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, "training ended before the CLI could watch it; make the run longer"
        cli = subprocess.run([sys.executable, "-m", "featureflow.curves", str(root / "results")], capture_output=True, text=True,
                             timeout=120, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
        assert proc.poll() is None, "training ended while the CLI drew; make the run longer"
    finally:
        proc.kill()
        proc.wait()
    assert cli.returncode == 0, cli.stderr[-2000:]
    line = re.search(r"^(\S+): slow running \(step (\d+)\)$", cli.stdout, re.M)
    assert line and line.group(1) == str(root / "results/lm/training_curves.html") and int(line.group(2)) >= 6, cli.stdout
    assert "sae: nothing logged yet" in cli.stdout
    assert "slow (running)" in (root / "results/lm/training_curves.html").read_text()
    assert not (root / "results/lm/training_curves.png").exists()


def test_cli_without_logs_says_so_and_fails(tmp_path):
    run = subprocess.run([sys.executable, "-m", "featureflow.curves", str(tmp_path)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert run.returncode == 1 and f"lm: nothing logged yet under {tmp_path / 'lm'}" in run.stdout
    assert redraw(tmp_path) == {"lm": None, "sae": None}


# --- TensorBoard (optional) --------------------------------------------------------------------------------------

class FakeWriter:
    """Records what TrainLog sends to torch.utils.tensorboard.SummaryWriter."""

    made: list = []

    def __init__(self, log_dir, purge_step=None):
        self.log_dir, self.purge_step, self.scalars, self.closed = log_dir, purge_step, [], False
        FakeWriter.made.append(self)

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_tensorboard_events_go_beside_the_csv_and_a_resume_relogs_the_kept_rows(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    FakeWriter.made.clear()
    kept = [{"step": 10, "loss": 3.0, "lr": 1e-3}]
    log = TrainLog(tmp_path / "m/train_log.csv", ("step", "loss", "lr"), kept, tensorboard=True)
    log.append({"step": 20, "loss": 2.5, "lr": 5e-4})
    assert (tmp_path / "m/train_log.csv").read_text().splitlines() == ["step,loss,lr", "10,3.0,0.001", "20,2.5,0.0005"]
    log.close()
    (writer,) = FakeWriter.made
    assert writer.log_dir == str(tmp_path / "m") and writer.purge_step == 0 and writer.closed
    assert writer.scalars == [("loss", 3.0, 10), ("lr", 1e-3, 10), ("loss", 2.5, 20), ("lr", 5e-4, 20)]


def test_real_tensorboard_events_hold_the_rows_and_a_resume_drops_what_a_killed_run_logged_after_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fields = ("step", "loss")
    killed = TrainLog(tmp_path / "m/train_log.csv", fields, tensorboard=True)
    for step, loss in ((10, 3.0), (20, 2.5), (30, 2.0)):  # its checkpoint holds step 10 only
        killed.append({"step": step, "loss": loss})
    killed.close()
    resumed = TrainLog(tmp_path / "m/train_log.csv", fields, [{"step": 10, "loss": 3.0}], tensorboard=True)
    resumed.append({"step": 20, "loss": 2.25})
    resumed.close()
    events = EventAccumulator(str(tmp_path / "m"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(10, 3.0), (20, 2.25)]
    assert read_log(tmp_path / "m/train_log.csv")["loss"].tolist() == [3.0, 2.25]


def test_tensorboard_without_the_package_warns_once_and_writes_the_csv(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails, as without the package
    with caplog.at_level(logging.WARNING, logger="featureflow.runtime"):
        log = TrainLog(tmp_path / "train_log.csv", ("step", "loss"), tensorboard=True)
        log.append({"step": 1, "loss": 2.0})
        log.append({"step": 2, "loss": 1.0})
        log.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "pip install tensorboard" in warnings[0], warnings
    assert read_log(tmp_path / "train_log.csv")["loss"].tolist() == [2.0, 1.0]
    assert [p.name for p in tmp_path.iterdir()] == ["train_log.csv"]


def test_tensorboard_is_off_by_default_and_reaches_jobs_from_the_config_not_params():
    from featureflow.config import SCHEMA_PATH, validate_config
    from featureflow.settings import Resources
    from featureflow.stage import job_resources

    cfg = validate_config({"corpora": {"t": {"files": ["t.txt"]}}, "models": {"m": {"train_on": ["t"]}}}, SCHEMA_PATH)
    assert cfg["tensorboard"] is False
    assert Resources.local(device="cpu", threads=1).tensorboard is False
    for on in (False, True):
        smk = types.SimpleNamespace(params=types.SimpleNamespace(device="cpu"), threads=1, resources=types.SimpleNamespace(),
                                    config={**cfg, "tensorboard": on})
        assert job_resources(smk).tensorboard is on


# --- the workflow ------------------------------------------------------------------------------------------------

def test_curves_rules_are_in_the_default_dag_with_every_models_log(tmp_path):
    (tmp_path / "data").symlink_to(REPO / "data")
    dry = snakemake_local(tmp_path, "--configfile", str(MICRO), "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    out = dry.stdout + dry.stderr
    for stage in ("lm", "sae"):
        block = re.search(rf"^rule {stage}_curves:\n(.*?)\n\n", out, re.S | re.M)
        assert block, f"{stage}_curves is not a job of the default target"
        assert f"results/{stage}/training_curves.png" in block.group(1) and f"results/{stage}/training_curves.html" in block.group(1)
    lm_inputs = re.search(r"^rule lm_curves:\n\s+input: (.*)$", out, re.M).group(1)
    assert {"babypython", "lua", "tinystories"} == set(re.findall(r"results/lm/(\w+)/train_log\.csv", lm_inputs))
    sae_inputs = re.search(r"^rule sae_curves:\n\s+input: (.*)$", out, re.M).group(1)
    assert {"babypython", "lua", "tinystories", "luastories"} == set(re.findall(r"results/sae/(\w+)/train_log\.csv", sae_inputs))


def test_micro_run_draws_the_curves_and_threshold_or_tensorboard_rerun_none(micro_run):
    wd, first = micro_run
    res = wd / "results"
    for stage in ("lm", "sae"):  # on the head node, not a cluster job
        assert f"localrule {stage}_curves:" in first.stdout + first.stderr
    for stage in ("lm", "sae"):
        assert (res / stage / "training_curves.png").stat().st_size > 20_000
        assert "still running" not in (res / stage / "training_curves.html").read_text()
    html = (res / "lm/training_curves.html").read_text()
    assert "lua (fine-tune of babypython)" in html and "luastories" not in html  # a merge has no training log
    for change in ("threshold=0.5", "tensorboard=True"):
        dry = snakemake_local(wd, "--configfile", str(MICRO), "--config", change, "-n", "--quiet", "rules")
        assert dry.returncode == 0, dry.stderr[-3000:]
        assert "lm_curves" not in dry.stdout and "sae_curves" not in dry.stdout, (change, dry.stdout)
    assert "Nothing to be done" in dry.stdout + dry.stderr, "tensorboard reruns nothing"
