"""LM training: schedule, sampling, fine-tune checks, kill-and-resume, HF/TransformerLens loading."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from featureflow.config import ConfigError
from featureflow.data import build_tokenizer, tokenize_split
from featureflow.lm.folder import check_parent, save_model
from featureflow.lm.model import build_model, load_model
from featureflow.lm.train import BlockSampler, lr_factor, total_steps
from featureflow.runtime import CheckpointError, TrainingRun
from featureflow.settings import TokenizerSettings, TrainSettings
from helpers import DOC_SEP, REPO, WORDS, architecture, call_train, settings

SHAPE = {"d_model": 32, "d_mlp": 64, "n_heads": 2, "n_layers": 1, "block_size": 32}
ARCH = architecture(**SHAPE)
BPE_300 = settings(TokenizerSettings, vocab_size=300)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A BPE tokenizer and a token mixture built from small generated documents."""
    root = tmp_path_factory.mktemp("lm")
    rng = np.random.default_rng(0)
    docs = []
    for i in range(400):
        words = WORDS[list(WORDS)[i % 4]]
        docs.append(" ".join(words[j] for j in rng.integers(0, len(words), 60)))
    (root / "train.txt").write_text(DOC_SEP.join(docs))
    build_tokenizer(BPE_300, [root / "train.txt"], root / "tok")
    tokenize_split(root / "train.txt", root / "tok", root / "train.npy", root / "train.json")
    return root


def run_kwargs(data, out, arch=SHAPE, settings=None, checkpoint_every=40, **extra):
    """JSON-able arguments of helpers.call_train: a small model trained on the fixture's tokens."""
    schedule = settings or {"tokens": 60000, "batch_size": 8, "lr": 3e-3, "warmup_steps": 5}
    kw = dict(name="base", mixture_npy=str(data / "train.npy"), tokenizer_dir=str(data / "tok"), out_dir=str(out),
              train_log=f"{out}/train_log.csv", train_meta=f"{out}/train_meta.json", ckpt_dir=str(out) + "_ckpt",
              settings={"architecture": arch, "schedule": schedule, "checkpoint_every": checkpoint_every, "log_every": 10},
              seed=0, resources={"device": "auto", "threads": 2})
    kw.update(extra)
    return kw


def weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_lr_warms_up_then_decays_to_the_floor():
    s = settings(TrainSettings, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    factors = [lr_factor(i, 110, s) for i in range(111)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert factors[110] == pytest.approx(0.1)


def test_total_steps_from_tokens_or_epochs():
    assert total_steps(1000, 32, settings(TrainSettings, tokens=32 * 8 * 10, batch_size=8)) == 10
    assert total_steps(1000, 32, settings(TrainSettings, epochs=2, batch_size=8)) == 250


def test_each_epoch_visits_every_block_once_in_a_seeded_order():
    sampler = BlockSampler(n_blocks=40, batch_size=8, seed=0, name="m")
    epoch0 = np.concatenate([sampler.batch(s) for s in range(5)])
    epoch1 = np.concatenate([sampler.batch(s) for s in range(5, 10)])
    assert sorted(epoch0) == sorted(epoch1) == list(range(40))
    assert not np.array_equal(epoch0, epoch1)
    assert np.array_equal(BlockSampler(40, 8, 0, "m").batch(7), sampler.batch(7))
    assert not np.array_equal(BlockSampler(40, 8, 1, "m").batch(0), BlockSampler(40, 8, 0, "m").batch(0))


def test_scratch_then_finetune_learn_and_save_loadable_models(data, tmp_path):
    base = call_train(run_kwargs(data, tmp_path / "base"))
    log = (tmp_path / "base/train_log.csv").read_text().strip().split("\n")
    first, last = float(log[1].split(",")[2]), float(log[-1].split(",")[2])
    assert first - last > 1.0, (first, last)
    assert base["steps"] == total_steps(0, 32, settings(TrainSettings, tokens=60000, batch_size=8))
    model = load_model(tmp_path / "base")
    assert model.config.num_hidden_layers == 1 and model.config.intermediate_size == 64
    assert not any((tmp_path / "base_ckpt").glob("*.pt")), "checkpoints are removed after success"
    for name in ("tokenizer.json", "tokenizer_meta.json", "config.json", "train_meta.json"):
        assert (tmp_path / "base" / name).exists()

    ft = call_train(run_kwargs(data, tmp_path / "ft", name="ft", parent_dir=str(tmp_path / "base"), parent="base",
                                  settings={"tokens": 5000, "batch_size": 8, "lr": 1e-3}))
    assert ft["parent"] == "base"
    before, after = weights(tmp_path / "base"), weights(tmp_path / "ft")
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k], after[k], atol=0.2) for k in before), "a short fine-tune stays near its parent"
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_training_is_deterministic(data, tmp_path):
    kw = dict(settings={"tokens": 8000, "batch_size": 8, "lr": 3e-3})
    call_train(run_kwargs(data, tmp_path / "a", **kw))
    call_train(run_kwargs(data, tmp_path / "b", **kw))
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_compile_switch_logs_itself_and_keeps_the_weights_and_their_names(data, tmp_path):
    kw = dict(settings={"tokens": 8000, "batch_size": 8, "lr": 3e-3})
    eager = call_train(run_kwargs(data, tmp_path / "a", **kw))  # auto on a CPU: eager
    compiled = call_train(run_kwargs(data, tmp_path / "b", resources={"device": "cpu", "threads": 2, "compile": True}, **kw))
    assert (eager["compiled"], compiled["compiled"]) == (False, True)
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert wa.keys() == wb.keys()  # no "_orig_mod." prefixes: checkpoints and folders stay interchangeable
    for k in wa:
        torch.testing.assert_close(wb[k], wa[k], rtol=1e-3, atol=1e-4)


def test_training_run_resumes_its_own_checkpoints_only_and_tidies_up(tmp_path):
    """The scaffold shared by the LM and SAE loops: which steps checkpoint, what a resume restores."""
    first = TrainingRun("t", tmp_path / "ck", "fp-A", total_steps=7, checkpoint_every=3)
    assert first.resume() is None and [d for d in range(1, 8) if first.checkpoint_due(d)] == [3, 6]  # not after the last
    first.open_log(tmp_path / "log.csv", ("step", "loss"), tensorboard=False)
    for step in first.steps():
        if step + 1 == 5:
            break  # killed after step 5: the newest checkpoint is step 3's
        first.log({"step": step + 1, "loss": 1.0 / (step + 1)})
        if first.checkpoint_due(step + 1):
            first.save_checkpoint(step + 1, {"weights": torch.full((2,), float(step + 1))})
    again = TrainingRun("t", tmp_path / "ck", "fp-A", total_steps=7, checkpoint_every=3)
    state = again.resume()
    assert again.start == 3 and [r["step"] for r in again.rows] == [1, 2, 3] and torch.equal(state["weights"], torch.full((2,), 3.0))
    assert list(again.steps()) == [3, 4, 5, 6]
    again.open_log(tmp_path / "log.csv", ("step", "loss"), tensorboard=False)
    assert (tmp_path / "log.csv").read_text().splitlines()[1:] == ["1,1.0", "2,0.5", "3,0.3333333333333333"]
    assert TrainingRun("t", tmp_path / "ck", "fp-B", 7, 3).resume() is None  # other settings: not this run's checkpoint
    again.finish(keep_checkpoints=True)
    assert list((tmp_path / "ck").glob("step_*.pt"))
    again.finish(keep_checkpoints=False)
    assert not list((tmp_path / "ck").glob("step_*.pt"))


def test_killed_run_resumes_past_a_corrupt_checkpoint_to_identical_weights(data, tmp_path):
    arch = {"d_model": 64, "d_mlp": 256, "n_heads": 4, "n_layers": 1, "block_size": 64}
    # 150 steps, a checkpoint every 25 (log rows every 10, so the resumed run starts mid-way through a
    # log window and must log the same mean loss as the straight run): killed once two are written
    schedule = {"tokens": 64 * 16 * 150, "batch_size": 16, "lr": 2e-3, "warmup_steps": 20}
    killed = run_kwargs(data, tmp_path / "killed", arch=arch, settings=schedule, checkpoint_every=25)
    code = (f"import json, logging, sys; logging.basicConfig(level=logging.INFO); sys.path.insert(0, {str(REPO / 'src')!r}); "
            f"sys.path.insert(0, {str(REPO / 'tests')!r}); from helpers import call_train; call_train(json.loads(sys.argv[1]))")
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(killed)], stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / "killed_ckpt"
    deadline = time.time() + 300
    while len(list(ckpt.glob("step_*.pt"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed; make the run longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    newest = sorted(ckpt.glob("step_*.pt"))[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a half-written file

    resumed = subprocess.run([sys.executable, "-c", code, json.dumps(killed)], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"checkpoint {newest} is corrupt" in resumed.stderr
    meta = json.loads((tmp_path / "killed/train_meta.json").read_text())
    assert 0 < meta["resumed_from_step"] < meta["steps"]

    call_train(run_kwargs(data, tmp_path / "straight", arch=arch, settings=schedule, checkpoint_every=25))
    wk, ws = weights(tmp_path / "killed"), weights(tmp_path / "straight")
    assert all(torch.equal(wk[k], ws[k]) for k in ws)
    log_k = (tmp_path / "killed/train_log.csv").read_text().splitlines()
    log_s = (tmp_path / "straight/train_log.csv").read_text().splitlines()
    assert [r.split(",")[:4] for r in log_k] == [r.split(",")[:4] for r in log_s]


def test_all_checkpoints_corrupt_is_an_error_not_a_silent_restart(data, tmp_path):
    ckpt = tmp_path / "m_ckpt"
    ckpt.mkdir()
    (ckpt / "step_00000040.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="all checkpoints in .* are corrupt \\(step_00000040.pt\\)"):
        call_train(run_kwargs(data, tmp_path / "m"))


def test_parent_with_other_shape_or_tokenizer_is_refused(data, tmp_path):
    parent = build_model(ARCH, 300, 0, seed=0)
    save_model(parent, data / "tok", tmp_path / "parent")
    wider = architecture(**{**SHAPE, "d_mlp": 128})
    with pytest.raises(ConfigError, match=r"cannot fine-tune 'child' from 'parent' .*d_mlp 64 vs 128"):
        check_parent(tmp_path / "parent", "parent", "child", wider, 300, data / "tok")
    other_tok = tmp_path / "tok2"
    build_tokenizer(BPE_300, [REPO / "tests" / "helpers.py"], other_tok)
    with pytest.raises(ConfigError, match=r"cannot fine-tune 'child' from 'parent': tokenizer of .*parent differs from .*tok2"):
        check_parent(tmp_path / "parent", "parent", "child", ARCH, 300, other_tok)


def test_transformerlens_hook_post_equals_down_proj_input(data, tmp_path):
    from transformer_lens.model_bridge import TransformerBridge

    save_model(build_model(ARCH, 300, 0, seed=3), data / "tok", tmp_path / "m")
    hf = load_model(tmp_path / "m").eval()
    ids = torch.from_numpy(np.load(data / "train.npy")[: 4 * 32].astype(np.int64).reshape(4, 32))
    captured = {}
    hf.model.layers[0].mlp.down_proj.register_forward_pre_hook(lambda mod, args: captured.setdefault("x", args[0]))
    with torch.no_grad():
        hf(input_ids=ids)
    bridge = TransformerBridge.boot_transformers(str(tmp_path / "m"), device="cpu")
    _, cache = bridge.run_with_cache(ids, names_filter=lambda n: n == "blocks.0.mlp.hook_post")
    tl = cache["blocks.0.mlp.hook_post"]
    assert tl.shape == captured["x"].shape == (4, 32, 64)
    torch.testing.assert_close(tl, captured["x"], rtol=0, atol=1e-6)
