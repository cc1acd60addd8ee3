"""Every registered SAE architecture (featureflow.sae.architectures) against the seam's contract.

Each test runs for every entry of ARCHITECTURES, so a new architecture is checked by adding it there.
"""

import pytest
import torch

from featureflow.config import load_schema
from featureflow.sae.architectures import ARCHITECTURES, BASE_TENSORS, get_architecture, log_fields
from featureflow.sae.model import SparseAutoencoder, saelens_cfg, save_sae
from featureflow.sae.saved import load_sae
from featureflow.settings import SAESettings
from helpers import SCHEMA, settings

EACH = pytest.mark.parametrize("arch", list(ARCHITECTURES.values()), ids=list(ARCHITECTURES))


def trained_like(seed: int = 0) -> SparseAutoencoder:
    """A small SAE with a non-trivial scale, mean and biases, as training leaves one."""
    sae = SparseAutoencoder(6, 24, seed=seed)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.3, generator=torch.Generator().manual_seed(seed))
        sae.b_dec.normal_(0, 0.2, generator=torch.Generator().manual_seed(seed + 1))
        sae.mean.copy_(torch.linspace(-0.5, 0.5, 6))
        sae.scale.fill_(1.7)
    return sae


def test_the_schema_offers_exactly_the_registered_architectures_and_defaults_to_the_papers():
    spec = load_schema(SCHEMA)["properties"]["sae"]["properties"]["architecture"]
    assert spec["enum"] == list(ARCHITECTURES) and spec["default"] == "standard"
    with pytest.raises(ValueError, match=r"SAE architecture 'topk' is not one featureflow has \(known: standard"):
        get_architecture("topk")


@EACH
def test_saved_weights_encode_raw_activations_as_training_encodes_scaled_ones(arch, tmp_path):
    sae, s = trained_like(), settings(SAESettings)
    raw = torch.randn(40, 6, generator=torch.Generator().manual_seed(3)) * 2
    with torch.no_grad():
        terms = arch.loss_terms(sae, raw * sae.scale, arch.coefficient_values(0, 10, arch.config(s)))
    save_sae(sae, tmp_path, saelens_cfg(sae, "m", s.hook, 24, "x", {"architecture": arch.name, **arch.cfg_keys(s)}), {})
    saved = load_sae(tmp_path)
    assert saved.architecture is arch and set(BASE_TENSORS) | set(arch.extra_tensors) == set(saved.weights)
    f = saved.encode(raw)
    torch.testing.assert_close(f, terms["f"], rtol=1e-5, atol=1e-5)
    assert 0 < (f > 0).float().mean() < 1, "the planted SAE has active and inactive features"
    torch.testing.assert_close(saved.decode(f), (f @ sae.W_dec + sae.b_dec).detach() / sae.scale, rtol=1e-5, atol=1e-5)


@EACH
def test_the_loss_terms_are_the_logged_columns_and_the_coefficients_follow_the_recipe(arch):
    s = settings(SAESettings)
    terms = arch.loss_terms(trained_like(), torch.randn(16, 6), arch.coefficient_values(0, 100, arch.config(s)))
    fields = log_fields(arch)
    assert fields[:3] == ("step", "tokens", "loss") and set(arch.logged_terms) <= set(terms) and {"loss", "f"} <= set(terms)
    assert [f"{c}_coefficient" for c in arch.coefficients] == [f for f in fields if f.endswith("_coefficient")]
    assert set(arch.coefficient_values(0, 100, arch.config(s))) == set(arch.coefficients)
    assert terms["loss"].ndim == 0 and terms["loss"].requires_grad


@EACH
def test_the_cpu_sparse_step_gives_the_dense_gradients_where_the_architecture_claims_it(arch, monkeypatch):
    """CPU float32 takes featureflow.sae.sparse's step exactly for architectures with `sparse_cpu_step`; float64 the dense one."""
    from featureflow.sae import sparse

    calls = []
    real = sparse.sae_step_forward
    monkeypatch.setattr(sparse, "sae_step_forward", lambda *a: calls.append(a[0].dtype) or real(*a))
    s = settings(SAESettings)
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(5))
    grads = {}
    for dtype in (torch.float32, torch.float64):
        sae = trained_like().to(dtype)
        arch.loss_terms(sae, x.to(dtype), arch.coefficient_values(50, 100, arch.config(s)))["loss"].backward()
        grads[dtype] = [p.grad.double() for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)]
    assert calls == ([torch.float32] if arch.sparse_cpu_step else []), "the sparse step runs where it is claimed, on float32 only"
    for sparse_grad, dense_grad in zip(grads[torch.float32], grads[torch.float64], strict=True):
        torch.testing.assert_close(sparse_grad, dense_grad, rtol=1e-4, atol=1e-6)
