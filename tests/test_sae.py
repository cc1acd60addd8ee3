"""SAE: forward pass vs numpy, decoder norms, dictionary recovery, SAELens export, schedule, resume."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from featureflow.data import build_tokenizer, tokenize_split
from featureflow.lm import build_model, save_model
from featureflow.sae.activations import BlockSource, mlp_hook_post
from featureflow.sae.architectures import STANDARD
from featureflow.sae.model import SAE_CFG, SparseAutoencoder, saelens_cfg, save_sae
from featureflow.sae.saved import load_sae, load_sae_weights
from featureflow.sae.train import lr_factor
from featureflow.settings import SAESettings, TokenizerSettings
from helpers import DOC_SEP, REPO, WORDS, architecture, call_sae, settings


def random_sae(d_in=4, d_sae=6, seed=0):
    sae = SparseAutoencoder(d_in, d_sae, seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in (sae.W_enc, sae.b_enc, sae.b_dec):
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        sae.mean.copy_(torch.randn(d_in, generator=g))
        sae.scale.fill_(2.5)
    return sae


def test_forward_and_loss_match_numpy():
    sae = random_sae()
    x = torch.randn(5, 4)
    W_e, b_e, W_d, b_d, mu = (t.detach().numpy().astype(np.float64) for t in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec, sae.mean))
    xn = x.numpy().astype(np.float64)
    f = np.maximum(0, (xn - mu - b_d) @ W_e + b_e)
    x_hat = f @ W_d + b_d
    terms = STANDARD.loss_terms(sae, x, {"l1": 0.01})
    np.testing.assert_allclose(terms["f"].detach().numpy(), f, rtol=1e-5, atol=1e-6)
    expected = ((xn - x_hat) ** 2).mean() + 0.01 * np.abs(f).sum(axis=1).mean()
    assert terms["loss"].item() == pytest.approx(expected, rel=1e-5)
    assert terms["l0"].item() == pytest.approx((f > 0).sum(axis=1).mean())


def test_decoder_rows_stay_unit_norm_and_grad_is_orthogonal():
    sae = SparseAutoencoder(8, 32, seed=0)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(5):
        terms = STANDARD.loss_terms(sae, torch.randn(64, 8), {"l1": 1e-3})
        opt.zero_grad()
        terms["loss"].backward()
        sae.remove_parallel_grad()
        parallel = (sae.W_dec.grad * sae.W_dec).sum(dim=1)
        assert parallel.abs().max() < 1e-6
        opt.step()
        sae.normalise_decoder()
        torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(32))


@pytest.mark.parametrize("bias, dense_above", [(-2.0, 0.1), (-2.0, 0.0), (0.0, 1.0), (-50.0, 0.1)],
                         ids=["sparse-L0-low", "dense-branch", "sparse-L0-half", "nothing-fires"])
def test_cpu_sparse_step_gives_the_dense_gradients(bias, dense_above, monkeypatch):
    import featureflow.sae.sparse as sparse

    monkeypatch.setattr(sparse, "DENSE_ABOVE", dense_above)
    sae = random_sae(d_in=64, d_sae=256, seed=3)
    with torch.no_grad():
        sae.b_enc.fill_(bias)
    x = torch.randn(200, 64, generator=torch.Generator().manual_seed(4))
    params = (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)

    def grads(loss):
        sae.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in params]

    x_hat, f = sae(x)  # the plain autograd forward: the reference
    reference = grads((x - x_hat).pow(2).mean() + 0.01 * f.abs().sum(dim=1).mean())
    terms = STANDARD.loss_terms(sae, x, {"l1": 0.01})
    torch.testing.assert_close(terms["f"], f.detach())
    for ours, ref in zip(grads(terms["loss"]), reference, strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-7)
    if bias == -50.0:
        assert terms["l0"].item() == 0 and sae.W_enc.grad.abs().max() == 0


def test_recovers_a_known_sparse_dictionary():
    torch.manual_seed(0)
    d_in, n_true, n = 32, 48, 40_000
    true_dirs = torch.nn.functional.normalize(torch.randn(n_true, d_in), dim=1)
    active = torch.rand(n, n_true) < 3 / n_true
    codes = active * torch.distributions.Exponential(1.0).sample((n, n_true))
    data = codes @ true_dirs
    sae = SparseAutoencoder(d_in, 2 * n_true, seed=0)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-3, betas=(0.9, 0.999))
    for _epoch in range(6):
        for batch in data[torch.randperm(n)].split(256):
            terms = STANDARD.loss_terms(sae, batch, {"l1": 3e-3})
            opt.zero_grad()
            terms["loss"].backward()
            sae.remove_parallel_grad()
            opt.step()
            sae.normalise_decoder()
    cos = true_dirs @ sae.W_dec.detach().T  # [n_true, d_sae]
    recovered = (cos.max(dim=1).values > 0.9).float().mean().item()
    assert recovered > 0.8, recovered


def test_saved_weights_reproduce_features_on_raw_activations(tmp_path):
    sae = random_sae(d_in=6, d_sae=10)
    cfg = saelens_cfg(sae, "lua", "blocks.0.mlp.hook_post", 24, "tokens")
    save_sae(sae, tmp_path, cfg, {"activation_scale": 2.5})
    w = load_sae_weights(tmp_path)
    assert {k: tuple(v.shape) for k, v in w.items()} == {"W_enc": (6, 10), "W_dec": (10, 6), "b_enc": (10,), "b_dec": (6,)}
    raw = torch.randn(7, 6)
    f_ours = sae.encode(raw * sae.scale)
    saved_sae = load_sae(tmp_path)
    assert saved_sae.architecture is STANDARD
    torch.testing.assert_close(saved_sae.encode(raw), f_ours, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(saved_sae.decode(f_ours), sae.decode(f_ours) / sae.scale, rtol=1e-5, atol=1e-5)
    saved = json.loads((tmp_path / SAE_CFG).read_text())
    assert saved["architecture"] == "standard" and saved["apply_b_dec_to_input"] is True
    assert saved["metadata"]["hook_name"] == "blocks.0.mlp.hook_post" and saved["metadata"]["model_name"] == "lua"
    assert (saved["d_in"], saved["d_sae"], saved["normalize_activations"]) == (6, 10, "none")


def test_schedule_warms_up_l1_and_decays_lr():
    s = settings(SAESettings, l1_coefficient=1.0, l1_warmup_fraction=0.1, lr_decay_fraction=0.2)
    assert (lr_factor(0, 100, s), STANDARD.coefficient_values(0, 100, STANDARD.config(s))) == (1.0, {"l1": pytest.approx(0.1)})
    assert (lr_factor(50, 100, s), STANDARD.coefficient_values(50, 100, STANDARD.config(s))) == (1.0, {"l1": 1.0})
    assert lr_factor(90, 100, s) == pytest.approx(0.5)
    paper = settings(SAESettings)
    paper_l1 = STANDARD.coefficient_values(0, 100, STANDARD.config(paper))
    assert (lr_factor(0, 100, paper), paper_l1) == (1.0, {"l1": 3e-4}), "the paper: constant lr, constant lambda"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    root = tmp_path_factory.mktemp("sae_lm")
    docs = [" ".join(WORDS[list(WORDS)[i % 4]] * 3) for i in range(200)]
    (root / "train.txt").write_text(DOC_SEP.join(docs))
    build_tokenizer(settings(TokenizerSettings, vocab_size=300), [root / "train.txt"], root / "tok")
    tokenize_split(root / "train.txt", root / "tok", root / "train.npy", root / "train.json")
    save_model(build_model(architecture(d_model=32, d_mlp=64, n_heads=2, n_layers=1, block_size=32), 300, 0, seed=0),
               root / "tok", root / "lm")
    return root


def test_hook_stops_early_and_equals_down_proj_input(tiny_lm):
    from featureflow.lm import load_model

    lm = load_model(tiny_lm / "lm")
    ids = torch.from_numpy(BlockSource([tiny_lm / "train.npy"], 24, 0, "m").blocks(3, 0))
    seen = {}
    lm.model.layers[0].mlp.down_proj.register_forward_pre_hook(lambda mod, args: seen.setdefault("x", args[0]))
    with torch.no_grad():
        lm(input_ids=ids)
    acts = mlp_hook_post(lm, ids, "blocks.0.mlp.hook_post")
    assert acts.shape == (3, 24, 64)
    torch.testing.assert_close(acts, seen["x"])


@pytest.mark.parametrize("own", [{"architecture": "standard", "l1_coefficient": 5e-3},
                                 {"architecture": "jumprelu", "l0_coefficient": 1e-3},  # a learned threshold in the optimiser
                                 {"architecture": "batchtopk", "k": 8}],  # a threshold buffer and AuxK
                         ids=["standard", "jumprelu", "batchtopk"])
def test_killed_sae_training_resumes_to_identical_weights(tiny_lm, tmp_path, own):
    # 200 steps, a checkpoint every 25, a log row every 10 and a buffer refill every 50: killed after the
    # first checkpoint, the resumed run starts mid-way through a log window and a buffer, as a real one would
    recipe = {"expansion_factor": 4, "tokens": 24 * 16 * 200, "batch_blocks": 16, "lr": 3e-3, **own,
              "normalize": "unit_rms", "buffer_tokens": 24 * 16 * 50, "checkpoint_every": 25, "log_every": 10}
    kw = dict(name="m", model_dir=str(tiny_lm / "lm"), token_files=[str(tiny_lm / "train.npy")], out_dir=str(tmp_path / "killed"),
              train_log=str(tmp_path / "killed_log.csv"), ckpt_dir=str(tmp_path / "ckpt"), settings=recipe, seed=0)
    code = (f"import json, sys; sys.path.insert(0, {str(REPO / 'src')!r}); sys.path.insert(0, {str(REPO / 'tests')!r}); "
            "from helpers import call_sae; call_sae(json.loads(sys.argv[1]))")
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(kw)])
    deadline = time.time() + 300
    while not list((tmp_path / "ckpt").glob("step_*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed; make the run longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = subprocess.run([sys.executable, "-c", code, json.dumps(kw)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    extra = json.loads((tmp_path / "killed/featureflow_sae.json").read_text())
    assert extra["resumed_from_step"] > 0
    call_sae({**kw, "out_dir": str(tmp_path / "straight"), "train_log": str(tmp_path / "straight_log.csv"),
              "ckpt_dir": str(tmp_path / "ckpt2")})
    a, b = load_sae_weights(tmp_path / "killed"), load_sae_weights(tmp_path / "straight")
    assert all(torch.equal(a[k], b[k]) for k in a)
    logged = [(tmp_path / f).read_text().splitlines() for f in ("killed_log.csv", "straight_log.csv")]
    assert len(logged[0]) == 21 and logged[0] == logged[1], \
        "the resumed run logs the rows of the uninterrupted one (the window open at the checkpoint carried over)"


def test_compile_switch_logs_itself_and_trains_the_same_sae(tiny_lm, tmp_path):
    recipe = {"expansion_factor": 4, "tokens": 24 * 16 * 40, "batch_blocks": 16, "lr": 3e-3, "l1_coefficient": 5e-3,
              "l1_warmup_fraction": 0.5, "normalize": "unit_rms", "buffer_tokens": 24 * 16 * 20, "log_every": 10}
    runs = {}
    for choice in ("auto", True):  # auto on a CPU: eager (and the sparse step)
        out = tmp_path / str(choice)
        runs[choice] = call_sae(dict(name="m", model_dir=str(tiny_lm / "lm"), token_files=[str(tiny_lm / "train.npy")],
                                     out_dir=str(out), train_log=str(out / "train_log.csv"), ckpt_dir=str(tmp_path / f"ckpt_{choice}"),
                                     settings=recipe, seed=0, resources={"device": "cpu", "threads": 2, "compile": choice}))
    assert (runs["auto"]["compiled"], runs[True]["compiled"]) == (False, True)
    eager, compiled = load_sae_weights(tmp_path / "auto"), load_sae_weights(tmp_path / "True")
    for k in eager:  # 40 Adam steps (l1 warming up every step, no recompiles) from the same start
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-3, atol=1e-4)


def test_resampling_points_dead_features_at_badly_reconstructed_inputs():
    from featureflow.sae.train import resample_dead

    sae = SparseAutoencoder(8, 16, seed=0)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    x = torch.zeros(32, 8)
    x[5] = torch.arange(1.0, 9.0) * 10  # the only input with a large error
    STANDARD.loss_terms(sae, x, {"l1": 1e-3})["loss"].backward()
    opt.step()
    dead = torch.zeros(16, dtype=torch.bool)
    dead[[3, 7]] = True
    before = sae.W_dec[0].clone()
    with torch.no_grad():
        x_hat = sae(x)[0]
    assert resample_dead(sae, opt, dead, x, x_hat, seed=0) == 2
    expected = torch.nn.functional.normalize(x[5] - sae.mean - sae.b_dec, dim=0)
    torch.testing.assert_close(sae.W_dec[3], expected)
    torch.testing.assert_close(sae.W_dec[7], expected)
    assert torch.equal(sae.W_dec[0], before), "alive features are untouched"
    assert sae.b_enc[3].item() == 0 and opt.state[sae.W_dec]["exp_avg"][3].abs().sum() == 0


def test_activation_chunk_is_the_shuffled_concatenation_bit_for_bit(tiny_lm):
    """A chunk is written batch by batch into its shuffled rows (held once): the same tensor as cat(batches)[order]."""
    from featureflow.lm import load_model
    from featureflow.sae.activations import activation_chunks

    lm = load_model(tiny_lm / "lm")
    source = BlockSource([tiny_lm / "train.npy"], 24, 0, "m")
    chunk = next(activation_chunks(lm, source, "blocks.0.mlp.hook_post", 50, first_chunk=3, forward_batch=16))
    ids = torch.from_numpy(source.blocks(50, 3))
    acts = torch.cat([mlp_hook_post(lm, ids[i:i + 16], "blocks.0.mlp.hook_post").flatten(0, 1) for i in range(0, 50, 16)])
    order = torch.from_numpy(np.random.default_rng([*source.key, 3, 1]).permutation(len(acts)))
    assert torch.equal(chunk, acts[order])


def test_activation_buffer_holds_at_most_what_training_reads():
    from featureflow.sae.memory import chunk_batches

    batch = 128 * 24
    assert chunk_batches(settings(SAESettings, tokens=30_000, buffer_tokens=1_000_000)) == 10, "10 steps read 10 batches"
    assert chunk_batches(settings(SAESettings, tokens=15_000_000, buffer_tokens=1_000_000)) == 1_000_000 // batch
    assert chunk_batches(settings(SAESettings, tokens=15_000_000, buffer_tokens=100)) == 1, "at least one batch"


def test_memory_estimate_is_within_a_factor_of_the_measured_peak(tmp_path):
    """Peak RSS of a training subprocess, at a shape where the activation buffer and the training step
    outweigh the Python runtime, is within MEMORY_FACTOR of `sae_train_memory`."""
    memory_factor = 1.5
    arch = {"d_model": 64, "d_mlp": 256, "n_heads": 2, "n_layers": 1, "block_size": 32}
    (tmp_path / "tok").mkdir()
    save_model(build_model(architecture(**arch), 512, 0, seed=0), tmp_path / "tok", tmp_path / "lm")
    np.save(tmp_path / "tokens.npy", np.random.default_rng(0).integers(0, 512, 500_000).astype(np.uint16))
    recipe = {"expansion_factor": 1, "batch_blocks": 4096, "tokens": 4 * 4096 * 24, "buffer_tokens": 4 * 4096 * 24,
              "checkpoint_every": 10**6}
    kw = dict(name="m", model_dir=str(tmp_path / "lm"), token_files=[str(tmp_path / "tokens.npy")], out_dir=str(tmp_path / "sae"),
              train_log=str(tmp_path / "log.csv"), ckpt_dir=str(tmp_path / "ckpt"), settings=recipe, seed=0)
    code = (f"import json, resource, sys; sys.path.insert(0, {str(REPO / 'src')!r}); sys.path.insert(0, {str(REPO / 'tests')!r}); "
            "from helpers import call_sae; call_sae(json.loads(sys.argv[1])); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)")
    run = subprocess.run([sys.executable, "-c", code, json.dumps(kw)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    measured_mb = int(run.stdout.split()[-1]) / 2**20

    from featureflow.lm import LMShape
    from featureflow.sae.memory import sae_train_memory

    estimate = sae_train_memory(settings(SAESettings, **recipe), LMShape(64, 256, 1, 2, 512), "cpu", 1_000_000)
    assert estimate.host["activation buffer"] + estimate.host["training step"] > estimate.host["runtime"]
    assert 1 / memory_factor <= measured_mb / estimate.host_mb <= memory_factor, (measured_mb, estimate.describe())


def _metrics(l0=30.0, d_sae=16384, explained_loss=0.9, explained_variance=0.8):
    return {"l0": l0, "d_sae": d_sae, "explained_loss": explained_loss, "explained_variance": explained_variance}


@pytest.mark.parametrize("metrics, reasons", [
    (_metrics(), 0),
    (_metrics(l0=350.0), 0),                       # 10 x the top of 25-35: the ceiling itself is not far
    (_metrics(l0=350.1), 1),
    (_metrics(l0=204.8, d_sae=2048), 0),           # 10% of 2,048 features, below 350: the width decides
    (_metrics(l0=205.0, d_sae=2048), 1),
    (_metrics(l0=2.5), 0),                         # the bottom of 25-35 / 10
    (_metrics(l0=2.49), 1),
    (_metrics(explained_loss=0.0, explained_variance=0.0), 0),
    (_metrics(explained_loss=-0.001), 1),
    (_metrics(explained_variance=-0.001), 1),
    (_metrics(explained_loss=float("nan")), 1),
    (_metrics(l0=8700.0, explained_loss=-0.5, explained_variance=-2.8), 3),  # the CPU paper-shape SAE of the issue
], ids=["on-target", "l0-at-ceiling", "l0-above-ceiling", "l0-at-10pct", "l0-above-10pct", "l0-at-floor", "l0-below-floor",
        "zero-explained", "negative-explained-loss", "negative-explained-variance", "nan", "issue-22"])
def test_off_target_rule_at_its_edges(metrics, reasons):
    from featureflow.sae import off_target

    assert len(off_target(metrics)) == reasons, off_target(metrics)


def test_sae_eval_warns_about_an_off_target_sae_by_name(caplog):
    from featureflow.sae import warn_off_target

    with caplog.at_level("WARNING"):
        assert warn_off_target("lua", _metrics()) == []
        assert not caplog.records
        warn_off_target("lua", _metrics(l0=8700.0, explained_variance=-2.8))
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    for text in ("SAE of lua", "L0 8,700.0 of 16,384 features", "explained loss 0.900", "explained variance -2.800",
                 "targets: L0 25-35, explained loss > 0.88", "not findings"):
        assert text in record.message, (text, record.message)
