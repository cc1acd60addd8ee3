"""Every registered SAE architecture (featureflow.sae.architectures) against the seam's contract, and each
sparsity mechanism (featureflow.sae.sparsity) against a naive reference on small tensors.

The contract tests run for every entry of ARCHITECTURES, so a new architecture is checked by adding it there.
"""

import pytest
import torch

from featureflow.config import SCHEMA_PATH, ConfigError, load_schema, validate_config
from featureflow.sae import sparsity
from featureflow.sae.architectures import ARCHITECTURES, BASE_TENSORS, get_architecture, log_fields
from featureflow.sae.architectures.batchtopk import BATCHTOPK, MATRYOSHKA_BATCHTOPK, prefix_widths
from featureflow.sae.architectures.jumprelu import JUMPRELU
from featureflow.sae.architectures.topk import TOPK
from featureflow.sae.model import SparseAutoencoder, saelens_cfg, save_sae
from featureflow.sae.saved import load_sae
from featureflow.settings import SAE_BLOCK_ONLY, SAESettings
from helpers import SCHEMA, settings

EACH = pytest.mark.parametrize("arch", list(ARCHITECTURES.values()), ids=list(ARCHITECTURES))


def arch_settings(arch, **overrides) -> SAESettings:
    """The schema's `sae` defaults under `arch` (k 4 for the TopK family: the test SAEs have 24 latents)."""
    own = {"k": 4} if "k" in {f for f in arch.config_class.__dataclass_fields__} else {}
    return settings(SAESettings, architecture=arch.name, **{**own, **overrides})


def trained_like(arch=None, seed: int = 0) -> SparseAutoencoder:
    """A small SAE with a non-trivial scale, mean, biases and architecture state, as training leaves one."""
    sae = SparseAutoencoder(6, 24, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3, generator=g)
        sae.b_dec.normal_(0, 0.2, generator=torch.Generator().manual_seed(seed + 1))
        sae.mean.copy_(torch.linspace(-0.5, 0.5, 6))
        sae.scale.fill_(1.7)
        if arch is not None:
            arch.init_state(sae, arch.config(arch_settings(arch)))
        if hasattr(sae, "threshold"):
            sae.threshold.copy_(torch.rand(24, generator=g) * 0.6)
        if hasattr(sae, "topk_threshold"):
            sae.topk_threshold.fill_(0.25)
    return sae


def test_the_schema_offers_exactly_the_registered_architectures_and_defaults_to_the_papers():
    spec = load_schema(SCHEMA)["properties"]["sae"]["properties"]["architecture"]
    assert spec["enum"] == list(ARCHITECTURES) and spec["default"] == "standard"
    with pytest.raises(ValueError, match=r"SAE architecture 'gated' is not one featureflow has \(known: standard, topk"):
        get_architecture("gated")


@EACH
def test_saved_weights_encode_raw_activations_as_training_encodes_scaled_ones(arch, tmp_path):
    """The saved folder reloads to the same features: exactly the training features where inference is the
    training mechanism; for BatchTopK (saved as JumpReLU), the JumpReLU at the estimated threshold."""
    sae, s = trained_like(arch), arch_settings(arch)
    config = arch.config(s)
    raw = torch.randn(40, 6, generator=torch.Generator().manual_seed(3)) * 2
    with torch.no_grad():
        terms = arch.loss_terms(sae, raw * sae.scale, arch.coefficient_values(0, 10, config), config)
    cfg = saelens_cfg(sae, "m", s.hook, 24, "x", {"architecture": arch.saved_name, **arch.cfg_keys(s)})
    save_sae(sae, tmp_path, cfg, {}, arch.saved_tensors(sae))
    saved = load_sae(tmp_path)
    assert saved.architecture is get_architecture(arch.saved_name)
    assert set(BASE_TENSORS) | set(arch.extra_tensors) == set(saved.weights)
    f = saved.encode(raw)
    if arch.saved_as is None:
        torch.testing.assert_close(f, terms["f"], rtol=1e-5, atol=1e-5)
    else:
        assert saved.architecture is JUMPRELU and torch.equal(saved.weights["threshold"], torch.full((24,), 0.25))
        with torch.no_grad():
            pre = sae.pre_activations(raw * sae.scale)
        torch.testing.assert_close(f, pre.relu() * (pre > 0.25), rtol=1e-5, atol=1e-5)
    assert 0 < (f > 0).float().mean() < 1, "the planted SAE has active and inactive features"
    torch.testing.assert_close(saved.decode(f), (f @ sae.W_dec + sae.b_dec).detach() / sae.scale, rtol=1e-5, atol=1e-5)


@EACH
def test_the_loss_terms_are_the_logged_columns_and_the_coefficients_follow_the_recipe(arch):
    s = arch_settings(arch)
    config = arch.config(s)
    sae, x = trained_like(arch), torch.randn(16, 6)
    terms = arch.loss_terms(sae, x, arch.coefficient_values(0, 100, config), config)
    if arch.uses_aux_loss:
        terms["aux"] = arch.aux_loss(sae, x, terms, torch.ones(24, dtype=torch.bool), config)
    fields = log_fields(arch)
    assert fields[:3] == ("step", "tokens", "loss") and set(arch.logged_terms) <= set(terms) and {"loss", "f"} <= set(terms)
    assert [f"{c}_coefficient" for c in arch.coefficients] == [f for f in fields if f.endswith("_coefficient")]
    assert set(arch.coefficient_values(0, 100, config)) == set(arch.coefficients)
    assert terms["loss"].ndim == 0 and terms["loss"].requires_grad


@EACH
def test_the_cpu_sparse_step_gives_the_dense_gradients_where_the_architecture_claims_it(arch, monkeypatch):
    """CPU float32 takes featureflow.sae.sparse's step exactly for architectures with `sparse_cpu_step`; float64 the dense one."""
    from featureflow.sae import sparse

    calls = []
    real = sparse.sae_step_forward
    monkeypatch.setattr(sparse, "sae_step_forward", lambda *a: calls.append(a[0].dtype) or real(*a))
    config = arch.config(arch_settings(arch))
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(5))
    grads = {}
    for dtype in (torch.float32, torch.float64):
        sae = trained_like(arch).to(dtype)
        arch.loss_terms(sae, x.to(dtype), arch.coefficient_values(50, 100, config), config)["loss"].backward()
        grads[dtype] = [p.grad.double() for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)]
    assert calls == ([torch.float32] if arch.sparse_cpu_step else []), "the sparse step runs where it is claimed, on float32 only"
    for sparse_grad, dense_grad in zip(grads[torch.float32], grads[torch.float64], strict=True):
        torch.testing.assert_close(sparse_grad, dense_grad, rtol=1e-4, atol=1e-6)


# --- the sparsity mechanisms against naive references ---

def test_topk_keeps_exactly_the_k_largest_of_every_row():
    pre = torch.randn(30, 50, generator=torch.Generator().manual_seed(0))
    pre[0] = -1.0 - torch.arange(50.0)  # a row with nothing positive: all of its k are ReLU'd away
    f = sparsity.topk_relu(pre, 7)
    for row, out in zip(pre, f, strict=True):
        keep = sorted(range(50), key=lambda i: -row[i].item())[:7]
        expected = torch.zeros(50)
        expected[keep] = row[keep].clamp_min(0)
        assert torch.equal(out, expected)
    assert ((f > 0).sum(dim=1)[1:] == 7).all() and (f[0] == 0).all()


def test_batch_topk_keeps_k_times_the_batch_over_the_whole_batch():
    pre = torch.randn(16, 40, generator=torch.Generator().manual_seed(1)).exp()  # all positive
    f = sparsity.batch_topk_relu(pre, 5)
    assert int((f > 0).sum()) == 5 * 16
    cut = pre.flatten().sort(descending=True).values[5 * 16 - 1]
    assert torch.equal(f, pre * (pre >= cut))
    assert (f > 0).sum(dim=1).float().std() > 0, "per token the count varies"


def test_jumprelu_gradients_are_the_straight_through_estimator_written_by_hand():
    g = torch.Generator().manual_seed(2)
    pre = (torch.rand(64, 10, generator=g) * 0.4).requires_grad_()
    theta = (torch.rand(10, generator=g) * 0.2 + 0.1).requires_grad_()
    eps = 0.05
    weights = torch.randn(64, 10, generator=g)
    ((sparsity.jump_relu(pre, theta, eps) * weights).sum() + 3.0 * sparsity.step(pre, theta, eps).sum()).backward()
    p, t = pre.detach(), theta.detach()
    inside = ((p - t).abs() < eps / 2).float()  # the rectangle kernel K((pre - theta) / eps)
    hand_theta = (-(t / eps) * inside * weights).sum(dim=0) + (-(1 / eps) * inside * 3.0).sum(dim=0)
    torch.testing.assert_close(theta.grad, hand_theta)
    torch.testing.assert_close(pre.grad, (p > t).float() * weights)  # the L0 term passes nothing to pre
    assert inside.sum() > 0, "some pre-activations lie within the kernel of their threshold"


def test_auxk_is_zero_when_nothing_is_dead_and_the_naive_loss_otherwise():
    g = torch.Generator().manual_seed(3)
    x_bar, residual = torch.randn(20, 6, generator=g), torch.randn(20, 6, generator=g)
    w_enc, b_enc, w_dec = torch.randn(6, 24, generator=g), torch.randn(24, generator=g), torch.randn(24, 6, generator=g)
    none_dead = torch.zeros(24, dtype=torch.bool)
    assert sparsity.auxk_loss(x_bar, residual, (w_enc, b_enc, w_dec), none_dead, 3).item() == 0
    dead = torch.zeros(24, dtype=torch.bool)
    dead[[1, 4, 9, 17, 20]] = True
    pre = x_bar @ w_enc + b_enc
    naive = torch.zeros(20, 6)
    for r in range(20):
        order = sorted(torch.nonzero(dead).flatten().tolist(), key=lambda i: -pre[r, i].item())[:3]
        for i in order:
            naive[r] += pre[r, i].clamp_min(0) * w_dec[i]
    torch.testing.assert_close(sparsity.auxk_loss(x_bar, residual, (w_enc, b_enc, w_dec), dead, 3), (naive - residual).pow(2).mean())
    # fewer dead than aux_k: all of them, the loss scaled by their share of aux_k
    all_dead = (torch.nonzero(dead).flatten().tolist(), 10)
    naive_all = sum(pre[:, i:i + 1].clamp_min(0) * w_dec[i] for i in all_dead[0])
    torch.testing.assert_close(sparsity.auxk_loss(x_bar, residual, (w_enc, b_enc, w_dec), dead, 10),
                               (naive_all - residual).pow(2).mean() * 5 / 10)


def test_topk_training_adds_auxk_on_the_dead_latents_only():
    sae, config = trained_like(TOPK), TOPK.config(arch_settings(TOPK, aux_coefficient=0.5))
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(4))
    terms = TOPK.loss_terms(sae, x, {"aux": 0.5}, config)
    dead = torch.zeros(24, dtype=torch.bool)
    dead[:3] = True
    TOPK.aux_loss(sae, x, terms, dead, config).backward()
    assert sae.b_enc.grad[:3].abs().sum() > 0 and sae.b_enc.grad[3:].abs().sum() == 0
    assert TOPK.aux_loss(sae, x, terms, torch.zeros(24, dtype=torch.bool), config).item() == 0


def test_matryoshka_loss_is_the_sum_of_its_prefixes_reconstruction_errors():
    sae = trained_like(MATRYOSHKA_BATCHTOPK)
    config = MATRYOSHKA_BATCHTOPK.config(arch_settings(MATRYOSHKA_BATCHTOPK, matryoshka_fractions=[0.25, 0.5, 1.0]))
    assert prefix_widths(config.matryoshka_fractions, 24) == [6, 12, 24]
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(6))
    terms = MATRYOSHKA_BATCHTOPK.loss_terms(sae, x, {"aux": 0.0}, config)
    f = terms["f"].detach()
    naive = sum((x - (f[:, :m] @ sae.W_dec[:m] + sae.b_dec)).pow(2).mean() for m in (6, 12, 24))
    torch.testing.assert_close(terms["loss"], naive)
    torch.testing.assert_close(terms["mse"], (x - (f @ sae.W_dec + sae.b_dec)).pow(2).mean())


def test_batchtopk_inference_threshold_reproduces_its_training_l0():
    """Trained on a stationary sparse source, the moving threshold's JumpReLU fires k per token on held-out data
    within 15% (the paper's reason for the estimate)."""
    torch.manual_seed(0)
    d_in, n_true, k = 16, 40, 4
    dirs = torch.nn.functional.normalize(torch.randn(n_true, d_in), dim=1)

    def draw(n):
        return ((torch.rand(n, n_true) < 3 / n_true) * torch.rand(n, n_true)) @ dirs

    sae = SparseAutoencoder(d_in, 64, seed=0)
    config = BATCHTOPK.config(arch_settings(BATCHTOPK, k=k))
    BATCHTOPK.init_state(sae, config)
    opt = torch.optim.Adam(sae.parameters(), lr=3e-3)
    for _ in range(600):
        terms = BATCHTOPK.loss_terms(sae, draw(256), {"aux": 0.0}, config)
        opt.zero_grad()
        terms["loss"].backward()
        sae.remove_parallel_grad()
        opt.step()
        sae.normalise_decoder()
        with torch.no_grad():
            BATCHTOPK.after_step(sae, terms, config)
        assert terms["l0"].item() == pytest.approx(k)
    with torch.no_grad():
        pre = sae.pre_activations(draw(4096))
    l0 = (sparsity.threshold_relu(pre, sae.topk_threshold) > 0).float().sum(dim=1).mean().item()
    assert sae.topk_threshold > 0 and abs(l0 - k) / k < 0.15, l0


# --- the config: each architecture's keys, and only its own ---

MINIMAL = {"corpora": {"text": {"files": ["text.txt"]}}, "models": {"model": {"train_on": ["text"]}}}


@pytest.mark.parametrize("sae, message", [
    ({"architecture": "topk", "l1_coefficient": 1e-3}, r"'sae\.l1_coefficient': applies to architecture standard only, not to 'topk'"),
    ({"k": 8}, r"'sae\.k': applies to architecture topk / batchtopk / matryoshka_batchtopk only, not to 'standard'"),
    ({"architecture": "batchtopk", "bandwidth": 0.1}, r"'sae\.bandwidth': applies to architecture jumprelu only"),
    ({"architecture": "jumprelu", "bandwidth": 0}, r"'sae\.bandwidth': 0 is less than or equal to the minimum of 0"),
    ({"architecture": "topk", "k": 0}, r"'sae\.k': 0 is less than the minimum of 1"),
    ({"architecture": "gated"}, r"'sae\.architecture': 'gated' is not one of"),
])
def test_a_key_of_another_architecture_or_out_of_range_is_refused_by_name(sae, message):
    with pytest.raises(ConfigError, match=message):
        validate_config({**MINIMAL, "sae": sae}, SCHEMA_PATH)


@EACH
def test_every_architecture_gets_its_own_defaults_and_nothing_else(arch):
    block = validate_config({**MINIMAL, "sae": {"architecture": arch.name}}, SCHEMA_PATH)["sae"]
    shared = set(SAESettings.__dataclass_fields__) - {"options"} | SAE_BLOCK_ONLY
    assert set(block) - shared == set(arch.config_class.__dataclass_fields__)


@pytest.mark.parametrize("options, message", [({"k": 24}, r"'sae\.k': 24 latents per token, but the SAE of model 'm' has 24"),
                                              ({"aux_k": 25}, r"'sae\.aux_k': 25 dead latents, but the SAE of model 'm' has 24")])
def test_k_and_aux_k_beyond_the_width_stop_before_training(options, message):
    from featureflow.sae.train import check_sizes

    with pytest.raises(ConfigError, match=message):
        check_sizes(arch_settings(TOPK, **options), 24, "m")
    check_sizes(arch_settings(TOPK, k=23, aux_k=24), 24, "m")
