"""SAEs of other libraries imported (featureflow.sae.formats): for each format and architecture a folder
planted in that library's own file layout (tensor names, shapes, dtypes and settings keys as it
writes them), imported, and its features and reconstruction compared with the library's own
formula, written out here in float64 from the library's source:

- SAELens: sae-lens 6.54.12, sae_lens/saes/{topk,jumprelu,gated}_sae.py and sae.py (process_sae_in);
- sparsify: eai-sparsify 1.3.3, sparsify/sparse_coder.py + fused_encoder.py (and a folder that
  sparsify itself writes, compared with its own encode and decode);
- dictionary_learning: saprmarks/dictionary_learning at 60ec6bf, dictionary.py and
  trainers/{top_k,batch_top_k,matryoshka_batch_top_k}.py;
- Gemma Scope: the tutorial's JumpReLUSAE (pre = x @ W_enc + b_enc, no b_dec subtracted).

Then what is refused, one line each naming the model, the key and the folder, with nothing written."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from featureflow.config import ConfigError
from featureflow.lineage import Pretrained
from featureflow.paths import SAE_CFG, SAE_EXTRA
from featureflow.sae import load_sae
from featureflow.sae.imports import import_sae

HOOK = "blocks.0.mlp.hook_post"
D_IN, D_SAE, K = 12, 40, 6
TOL = {"atol": 1e-6, "rtol": 1e-6}  # float32 weights evaluated in float64 on both sides


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def x_batch(n: int = 600) -> torch.Tensor:
    return torch.randn(n, D_IN, generator=gen(99), dtype=torch.float64) * 2


def randn(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=g) * scale


def decoder_rows(g: torch.Generator) -> torch.Tensor:
    """[D_SAE, D_IN] rows of norms between 0.2 and 3 (decoders trained without the unit-norm constraint)."""
    rows = torch.randn(D_SAE, D_IN, generator=g)
    return rows / rows.norm(dim=1, keepdim=True) * (0.2 + 2.8 * torch.rand(D_SAE, 1, generator=g))


def f64(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.double() for k, v in tensors.items()}


def run(tmp_path: Path, source: Path, *, path: str | None = None, hook: str = HOOK, d_in: int = D_IN,
        fmt: str = "auto") -> dict:
    return import_sae(model="lua", source=Pretrained(str(source), path=path, format=fmt), out_dir=tmp_path / "out",
                      hook_name=hook, d_in=d_in, cache_dir=None)


def topk_dense(pre: torch.Tensor, k: int) -> torch.Tensor:
    values, indices = torch.topk(pre, k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, indices, values)


def check_import(tmp_path: Path, f_ref: torch.Tensor, decode_ref, architecture: str) -> None:
    """The imported SAE's encode equals `f_ref` on x_batch(), with active and inactive latents both
    common, and its decode of f_ref equals the library's."""
    sae = load_sae(tmp_path / "out").to(torch.float64)
    assert sae.architecture.name == architecture
    active = float((f_ref > 0).double().mean())
    assert 0.05 < active < 0.9, f"the test needs active and inactive latents ({active:.2f} active)"
    torch.testing.assert_close(sae.encode(x_batch()), f_ref, **TOL)
    torch.testing.assert_close(sae.decode(f_ref), decode_ref(f_ref), **TOL)
    assert all(v.dtype == torch.float32 for v in load_sae(tmp_path / "out").weights.values())


def imported(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out" / SAE_EXTRA).read_text())["imported"]


# --- SAELens (cfg.json as SAELens 6's SAEConfig.to_dict writes it, sae_weights.safetensors)

def saelens_folder(folder: Path, architecture: str, tensors: dict[str, torch.Tensor], *, apply_b_dec: bool = True,
                   dtype=torch.float32, **keys) -> dict[str, torch.Tensor]:
    folder.mkdir(parents=True, exist_ok=True)
    stored = {k: v.to(dtype).contiguous() for k, v in tensors.items()}
    save_file(stored, str(folder / "sae_weights.safetensors"))
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "dtype": str(dtype).removeprefix("torch."), "device": "cuda",
           "apply_b_dec_to_input": apply_b_dec, "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": "6.54.12", "sae_lens_training_version": "6.54.12", "model_name": "their-model",
                        "hook_name": HOOK, "hook_head_index": None, "context_size": 128, "prepend_bos": True,
                        "dataset_path": "someone/data"},
           "architecture": architecture, **keys}
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return f64(stored)


def saelens_base(seed: int) -> dict[str, torch.Tensor]:
    g = gen(seed)
    return {"W_enc": randn(g, D_IN, D_SAE, scale=0.5), "b_enc": randn(g, D_SAE, scale=0.3), "W_dec": decoder_rows(g),
            "b_dec": randn(g, D_IN, scale=0.8)}


def sl_sae_in(w, x, apply_b_dec):  # SAE.process_sae_in
    return x - w["b_dec"] * apply_b_dec


@pytest.mark.parametrize("apply_b_dec", [True, False])
@pytest.mark.parametrize("rescale", [False, True])
def test_saelens_topk_equals_its_encode_with_the_decoder_norm_rescaling_folded(tmp_path, apply_b_dec, rescale):
    w = saelens_folder(tmp_path / "src", "topk", saelens_base(1), apply_b_dec=apply_b_dec, k=K,
                       rescale_acts_by_decoder_norm=rescale)
    run(tmp_path, tmp_path / "src")
    norms = w["W_dec"].norm(dim=-1)

    def encode(x):  # TopKSAE.encode, TopK.forward
        pre = sl_sae_in(w, x, apply_b_dec) @ w["W_enc"] + w["b_enc"]
        if rescale:
            pre = pre * norms
        values, indices = torch.topk(pre, K, dim=-1, sorted=False)
        return torch.zeros_like(pre).scatter_(-1, indices, values.relu())

    def decode(f):  # TopKSAE.decode, act_times_W_dec
        return (f * (1 / norms) if rescale else f) @ w["W_dec"] + w["b_dec"]

    f_ref = encode(x_batch())
    check_import(tmp_path, f_ref, decode, "topk")
    assert json.loads((tmp_path / "out" / SAE_CFG).read_text())["k"] == K
    if rescale:
        plain = topk_dense(sl_sae_in(w, x_batch(), apply_b_dec) @ w["W_enc"] + w["b_enc"], K).relu()
        assert float(((plain > 0) != (f_ref > 0)).any(dim=1).double().mean()) > 0.3, "the rescaling changes the selection"
    assert imported(tmp_path)["rescale_acts_by_decoder_norm_folded"] is rescale


def test_saelens_before_6_topk_is_a_standard_sae_with_a_topk_activation(tmp_path):
    w = saelens_base(2)
    (tmp_path / "src").mkdir()
    save_file(w, str(tmp_path / "src" / "sae_weights.safetensors"))
    (tmp_path / "src" / "cfg.json").write_text(json.dumps({
        "architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "hook_name": HOOK,
        "activation_fn_str": "topk", "activation_fn_kwargs": {"k": K}, "apply_b_dec_to_input": True,
        "normalize_activations": "none", "finetuning_scaling_factor": False, "sae_lens_training_version": "3.13.0"}))
    run(tmp_path, tmp_path / "src")
    w = f64(w)
    f_ref = topk_dense((x_batch() - w["b_dec"]) @ w["W_enc"] + w["b_enc"], K).relu()
    check_import(tmp_path, f_ref, lambda f: f @ w["W_dec"] + w["b_dec"], "topk")


@pytest.mark.parametrize("apply_b_dec,dtype", [(True, torch.float32), (False, torch.float32), (False, torch.bfloat16)])
def test_saelens_jumprelu_equals_its_encode(tmp_path, apply_b_dec, dtype):
    threshold = torch.rand(D_SAE, generator=gen(3)) * 3
    w = saelens_folder(tmp_path / "src", "jumprelu", saelens_base(3) | {"threshold": threshold}, apply_b_dec=apply_b_dec,
                       dtype=dtype)
    run(tmp_path, tmp_path / "src")
    pre = sl_sae_in(w, x_batch(), apply_b_dec) @ w["W_enc"] + w["b_enc"]  # JumpReLUSAE.encode
    f_ref = pre.relu() * (pre > w["threshold"]).double()
    assert float(((pre > 0) & (pre <= w["threshold"])).double().mean()) > 0.1, "the threshold removes features a ReLU keeps"
    check_import(tmp_path, f_ref, lambda f: f @ w["W_dec"] + w["b_dec"], "jumprelu")
    assert imported(tmp_path)["b_dec_folded_into_b_enc"] is (not apply_b_dec)


@pytest.mark.parametrize("apply_b_dec", [True, False])
def test_saelens_gated_equals_its_encode_as_a_jumprelu(tmp_path, apply_b_dec):
    g = gen(4)
    base = saelens_base(4)
    tensors = {"W_enc": base["W_enc"], "b_gate": randn(g, D_SAE, scale=1.5), "r_mag": randn(g, D_SAE, scale=0.5),
               "b_mag": randn(g, D_SAE, scale=0.5), "W_dec": base["W_dec"], "b_dec": base["b_dec"]}
    w = saelens_folder(tmp_path / "src", "gated", tensors, apply_b_dec=apply_b_dec)
    run(tmp_path, tmp_path / "src")
    sae_in = sl_sae_in(w, x_batch(), apply_b_dec)  # GatedSAE.encode
    gate = (sae_in @ w["W_enc"] + w["b_gate"] > 0).double()
    magnitude = sae_in @ (w["W_enc"] * w["r_mag"].exp()) + w["b_mag"]
    f_ref = gate * magnitude.relu()
    assert float(((magnitude > 0) & (gate == 0)).double().mean()) > 0.05, "the gate closes where the magnitude is positive"
    check_import(tmp_path, f_ref, lambda f: f @ w["W_dec"] + w["b_dec"], "jumprelu")
    assert imported(tmp_path)["source_architecture"] == "gated"


# --- sparsify (cfg.json as SparseCoder.save_to_disk writes it, sae.safetensors)

def sparsify_folder(folder: Path, seed: int = 5, **cfg) -> dict[str, torch.Tensor]:
    g = gen(seed)
    w = {"W_dec": decoder_rows(g), "b_dec": randn(g, D_IN, scale=0.8), "encoder.bias": randn(g, D_SAE, scale=0.3),
         "encoder.weight": randn(g, D_SAE, D_IN, scale=0.5)}
    folder.mkdir(parents=True)
    save_file(w, str(folder / "sae.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"activation": "topk", "expansion_factor": 32, "normalize_decoder": False,
                                                 "num_latents": D_SAE, "k": K, "multi_topk": False, "skip_connection": False,
                                                 "transcode": False, "d_in": D_IN, **cfg}))
    return f64(w)


def sparsify_encode(w, x, k=K):
    """SparseCoder.encode -> fused_encoder: ReLU(linear(x - b_dec)), then the top k (values, indices)."""
    pre = torch.relu((x - w["b_dec"]) @ w["encoder.weight"].T + w["encoder.bias"])
    values, indices = torch.topk(pre, k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, indices, values)


def sparsify_decode(w, f):
    """SparseCoder.decode: embedding_bag of W_dec's rows weighted by the top activations, + b_dec."""
    rows = f.nonzero()
    out = torch.zeros(f.shape[0], D_IN, dtype=f.dtype).index_add_(0, rows[:, 0], f[rows[:, 0], rows[:, 1], None] * w["W_dec"][rows[:, 1]])
    return out + w["b_dec"]


@pytest.mark.parametrize("hookpoint,hook", [("layers.0.mlp", "blocks.0.hook_mlp_out"), ("h.0", "blocks.0.hook_resid_post"),
                                           ("h.0.mlp.act", HOOK), ("layers.0.mlp.down_proj", "blocks.0.hook_mlp_out")])
def test_sparsify_topk_equals_its_encode(tmp_path, hookpoint, hook):
    w = sparsify_folder(tmp_path / "ckpt" / hookpoint)
    run(tmp_path, tmp_path / "ckpt", path=hookpoint, hook=hook)
    check_import(tmp_path, sparsify_encode(w, x_batch()), lambda f: sparsify_decode(w, f), "topk")
    record = imported(tmp_path)
    assert record["format"] == "sparsify" and record["hookpoint"] == hookpoint and record["decoder_rows_unit_norm"] is False


def test_a_folder_sparsify_writes_imports_to_its_own_encode_and_decode(tmp_path):
    sparsify = pytest.importorskip("sparsify")
    torch.manual_seed(0)
    coder = sparsify.SparseCoder(D_IN, sparsify.SparseCoderConfig(num_latents=D_SAE, k=K))
    with torch.no_grad():
        coder.encoder.bias.normal_(0, 0.3)
        coder.b_dec.normal_(0, 0.8)
        coder.W_dec.mul_(torch.rand(D_SAE, 1) * 2 + 0.2)
    coder.save_to_disk(tmp_path / "checkpoints" / "run" / "layers.0")
    run(tmp_path, tmp_path / "checkpoints" / "run", path="layers.0", hook="blocks.0.hook_resid_post")
    x = x_batch().float()
    with torch.no_grad():
        top_acts, top_indices, _ = coder.encode(x)
        f_theirs = torch.zeros(x.shape[0], D_SAE).scatter_(-1, top_indices, top_acts)
        x_hat_theirs = coder.decode(top_acts, top_indices)
    ours = load_sae(tmp_path / "out")
    assert 0.05 < float((f_theirs > 0).double().mean()) < 0.9
    torch.testing.assert_close(ours.encode(x), f_theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.decode(f_theirs), x_hat_theirs, atol=1e-5, rtol=1e-5)


def test_a_sparsify_checkpoint_without_path_names_its_hookpoints(tmp_path):
    for hookpoint in ("layers.0", "layers.1"):
        sparsify_folder(tmp_path / "ckpt" / hookpoint)
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"sae": {"k": K}, "hookpoints": ["layers.0", "layers.1"]}))
    with pytest.raises(ConfigError, match=r"its subfolders layers\.0, layers\.1 hold SAEs .*set `path` to one"):
        run(tmp_path, tmp_path / "ckpt", hook="blocks.0.hook_resid_post")


# --- dictionary_learning (ae.pt: the module's state dict in its order; config.json as training.py writes it)

def dl_folder(folder: Path, dict_class: str, state: dict[str, torch.Tensor], **trainer) -> dict[str, torch.Tensor]:
    folder.mkdir(parents=True)
    torch.save(state, folder / "ae.pt")
    config = {"trainer": {"trainer_class": dict_class.replace("AutoEncoder", "Standard") + "Trainer", "dict_class": dict_class,
                          "lr": 1e-3, "steps": 1000, "seed": 0, "activation_dim": D_IN, "dict_size": D_SAE, "device": "cuda:0",
                          "layer": 0, "lm_name": "EleutherAI/pythia-70m-deduped", "wandb_name": dict_class,
                          "submodule_name": "mlp_out_layer_0", **trainer},
              "buffer": {"d_submodule": D_IN, "io": "out", "n_ctxs": 3000, "ctx_len": 128, "refresh_batch_size": 512,
                         "out_batch_size": 8192, "device": "cuda:0"}}
    (folder / "config.json").write_text(json.dumps(config, indent=4))
    return f64({k: v for k, v in state.items() if v.is_floating_point()})


def linear_state(seed: int) -> dict[str, torch.Tensor]:
    """encoder: nn.Linear(d_in, d_sae) (weight [d_sae, d_in]); decoder: nn.Linear(d_sae, d_in, bias=False) (weight [d_in, d_sae])."""
    g = gen(seed)
    return {"encoder.weight": randn(g, D_SAE, D_IN, scale=0.5), "encoder.bias": randn(g, D_SAE, scale=0.3),
            "decoder.weight": decoder_rows(g).T.contiguous()}


def test_dictionary_learning_autoencoder(tmp_path):
    lin = linear_state(6)
    state = {"bias": randn(gen(60), D_IN, scale=0.8), **lin}
    w = dl_folder(tmp_path / "trainer_0", "AutoEncoder", state)
    run(tmp_path, tmp_path / "trainer_0")
    f_ref = torch.relu((x_batch() - w["bias"]) @ w["encoder.weight"].T + w["encoder.bias"])  # AutoEncoder.encode
    check_import(tmp_path, f_ref, lambda f: f @ w["decoder.weight"].T + w["bias"], "standard")
    assert imported(tmp_path)["format"] == "dictionary_learning"


def test_dictionary_learning_autoencoder_new_layout(tmp_path):
    lin = linear_state(7)
    state = {"encoder.weight": lin["encoder.weight"], "encoder.bias": lin["encoder.bias"],
             "decoder.weight": lin["decoder.weight"], "decoder.bias": randn(gen(70), D_IN, scale=0.8)}
    w = dl_folder(tmp_path / "trainer_0", "AutoEncoder", state)  # the trainers write 'AutoEncoder' for AutoEncoderNew too
    run(tmp_path, tmp_path / "trainer_0")
    f_ref = torch.relu(x_batch() @ w["encoder.weight"].T + w["encoder.bias"])  # AutoEncoderNew.encode
    check_import(tmp_path, f_ref, lambda f: f @ w["decoder.weight"].T + w["decoder.bias"], "standard")
    assert imported(tmp_path)["dict_class"] == "AutoEncoderNew"


def test_dictionary_learning_topk_keeps_k_per_token(tmp_path):
    state = {"k": torch.tensor(K, dtype=torch.int), "threshold": torch.tensor(0.7), **linear_state(8),
             "b_dec": randn(gen(80), D_IN, scale=0.8)}
    w = dl_folder(tmp_path / "trainer_0", "AutoEncoderTopK", state, k=K)
    run(tmp_path, tmp_path / "trainer_0")
    post_relu = torch.relu((x_batch() - w["b_dec"]) @ w["encoder.weight"].T + w["encoder.bias"])  # AutoEncoderTopK.encode
    top = post_relu.topk(K, sorted=False, dim=-1)
    f_ref = torch.zeros_like(post_relu).scatter_(-1, top.indices, top.values)
    check_import(tmp_path, f_ref, lambda f: f @ w["decoder.weight"].T + w["b_dec"], "topk")
    assert json.loads((tmp_path / "out" / SAE_CFG).read_text())["k"] == K


def test_dictionary_learning_batchtopk_encodes_with_its_threshold(tmp_path):
    state = {"k": torch.tensor(K, dtype=torch.int), "threshold": torch.tensor(2.5), **linear_state(9),
             "b_dec": randn(gen(90), D_IN, scale=0.8)}
    w = dl_folder(tmp_path / "trainer_0", "BatchTopKSAE", state, k=K)
    run(tmp_path, tmp_path / "trainer_0")
    post_relu = torch.relu((x_batch() - w["b_dec"]) @ w["encoder.weight"].T + w["encoder.bias"])  # BatchTopKSAE.encode
    f_ref = post_relu * (post_relu > w["threshold"]).double()  # use_threshold=True, the default
    assert float(((post_relu > 0) & (post_relu <= 2.5)).double().mean()) > 0.1
    check_import(tmp_path, f_ref, lambda f: f @ w["decoder.weight"].T + w["b_dec"], "jumprelu")


def test_dictionary_learning_matryoshka_batchtopk(tmp_path):
    base = saelens_base(10)
    state = {"k": torch.tensor(K, dtype=torch.int), "threshold": torch.tensor(2.0),
             "group_sizes": torch.tensor([8, 12, 20]), **base}
    w = dl_folder(tmp_path / "trainer_0", "MatryoshkaBatchTopKSAE", state, k=K, group_sizes=[8, 12, 20])
    run(tmp_path, tmp_path / "trainer_0")
    post_relu = torch.relu((x_batch() - w["b_dec"]) @ w["W_enc"] + w["b_enc"])  # MatryoshkaBatchTopKSAE.encode
    f_ref = post_relu * (post_relu > w["threshold"]).double()  # every group active (from_pretrained)
    check_import(tmp_path, f_ref, lambda f: f @ w["W_dec"] + w["b_dec"], "jumprelu")
    assert imported(tmp_path)["buffers"]["group_sizes"] == [8, 12, 20]


def test_dictionary_learning_jumprelu_does_not_subtract_b_dec(tmp_path):
    state = saelens_base(11) | {"threshold": torch.rand(D_SAE, generator=gen(110)) * 3}
    w = dl_folder(tmp_path / "trainer_0", "JumpReluAutoEncoder", state, bandwidth=0.001, sparsity_penalty=1.0, target_l0=20)
    run(tmp_path, tmp_path / "trainer_0")
    pre_jump = x_batch() @ w["W_enc"] + w["b_enc"]  # JumpReluAutoEncoder.encode, apply_b_dec_to_input False
    f_ref = torch.relu(pre_jump * (pre_jump > w["threshold"]).double())
    check_import(tmp_path, f_ref, lambda f: f @ w["W_dec"] + w["b_dec"], "jumprelu")
    assert any("b_dec @ W_enc" in f for f in imported(tmp_path)["folded"])


def test_dictionary_learning_gated_autoencoder_as_a_jumprelu(tmp_path):
    g = gen(12)
    lin = linear_state(12)
    state = {"decoder_bias": randn(g, D_IN, scale=0.8), "encoder.weight": lin["encoder.weight"],
             "r_mag": randn(g, D_SAE, scale=0.5), "gate_bias": randn(g, D_SAE, scale=1.5),
             "mag_bias": randn(g, D_SAE, scale=0.5), "decoder.weight": lin["decoder.weight"]}
    w = dl_folder(tmp_path / "trainer_0", "GatedAutoEncoder", state)
    run(tmp_path, tmp_path / "trainer_0")
    x_enc = (x_batch() - w["decoder_bias"]) @ w["encoder.weight"].T  # GatedAutoEncoder.encode
    f_ref = (x_enc + w["gate_bias"] > 0).double() * torch.relu(w["r_mag"].exp() * x_enc + w["mag_bias"])
    check_import(tmp_path, f_ref, lambda f: f @ w["decoder.weight"].T + w["decoder_bias"], "jumprelu")


# --- Gemma Scope (params.npz, float32 arrays)

def gemma_folder(folder: Path, drop: tuple[str, ...] = (), d_in: int = D_IN) -> dict[str, torch.Tensor]:
    g = gen(13)
    arrays = {"W_enc": randn(g, d_in, D_SAE, scale=0.5), "W_dec": randn(g, D_SAE, d_in, scale=0.3),
              "threshold": torch.rand(D_SAE, generator=g) * 3, "b_enc": randn(g, D_SAE, scale=0.3),
              "b_dec": randn(g, d_in, scale=0.8)}
    folder.mkdir(parents=True)
    np.savez(folder / "params.npz", **{k: v.numpy().astype(np.float32) for k, v in arrays.items() if k not in drop})
    return f64(arrays)


def test_gemma_scope_jumprelu_equals_its_encode(tmp_path):
    w = gemma_folder(tmp_path / "gemma-scope" / "layer_0" / "width_16k" / "average_l0_5")
    run(tmp_path, tmp_path / "gemma-scope", path="layer_0/width_16k/average_l0_5")
    pre = x_batch() @ w["W_enc"] + w["b_enc"]  # JumpReLUSAE.encode: no b_dec subtracted
    f_ref = (pre > w["threshold"]).double() * torch.relu(pre)
    assert float(((pre > 0) & (pre <= w["threshold"])).double().mean()) > 0.1
    check_import(tmp_path, f_ref, lambda f: f @ w["W_dec"] + w["b_dec"], "jumprelu")
    assert imported(tmp_path)["format"] == "gemma_scope"


# --- what is refused: one line naming the model, the key and the folder, nothing written

def _plant_saelens(root: Path, **keys) -> Path:
    saelens_folder(root / "src", keys.pop("architecture", "standard"), saelens_base(20), **keys)
    return root / "src"


def _plant_dl(root: Path, dict_class: str = "BatchTopKSAE", threshold: float = 1.0, **trainer) -> Path:
    state = {"k": torch.tensor(K, dtype=torch.int), "threshold": torch.tensor(threshold), **linear_state(21),
             "b_dec": torch.zeros(D_IN)}
    dl_folder(root / "src", dict_class, state, **trainer)
    return root / "src"


def _plant_sparsify(root: Path, name: str = "layers.0.mlp", **cfg) -> Path:
    sparsify_folder(root / name, **cfg)
    return root / name


def _plant_gemma(root: Path, **kw) -> Path:
    gemma_folder(root / "src", **kw)
    return root / "src"


def _backup(root: Path) -> Path:
    folder = _plant_dl(root)
    state = torch.load(folder / "ae.pt")
    torch.save({"step": 500, "ae": state, "optimizer": {}, "config": {}, "norm_factor": 3.2}, folder / "ae.pt")
    return folder


def _ambiguous(root: Path) -> Path:
    folder = _plant_saelens(root)
    save_file({"b_dec": torch.zeros(D_IN)}, str(folder / "sae.safetensors"))
    return folder


BAD = {  # case: (plant the folder, import keywords, the message)
    "saelens architecture": (lambda r: _plant_saelens(r, architecture="abstopk"), {},
                             r"cfg\.json: architecture 'abstopk'; featureflow imports SAELens 'standard', 'topk', 'jumprelu', 'gated'"),
    "saelens training form": (lambda r: _plant_saelens(r, architecture="batchtopk"), {}, r"architecture 'batchtopk' is SAELens' training form"),
    "layer_norm": (lambda r: _plant_saelens(r, normalize_activations="layer_norm"), {}, r"normalize_activations 'layer_norm'"),
    "topk without k": (lambda r: _plant_saelens(r, architecture="topk"), {}, r"architecture 'topk' needs an integer k"),
    "topk k beyond d_sae": (lambda r: _plant_saelens(r, architecture="topk", k=D_SAE + 1), {}, rf"k {D_SAE + 1} is not in \[1, d_sae {D_SAE}\]"),
    "saelens width": (_plant_saelens, {"d_in": D_IN + 4}, rf"cfg\.json: d_in {D_IN}, but the model's activations at .* have width {D_IN + 4}"),
    "gemma without threshold": (lambda r: _plant_gemma(r, drop=("threshold",)), {}, r"params\.npz: no array threshold"),
    "gemma width": (lambda r: _plant_gemma(r, d_in=D_IN + 4), {},
                    rf"params\.npz: W_enc has shape \[{D_IN + 4}, {D_SAE}\], expected \[{D_IN}, {D_SAE}\]"),
    "gemma layer": (lambda r: _plant_gemma(r / "layer_3"), {"path": "layer_3/src"},
                    r"path part 'layer_3': layer 3, but this run reads 'blocks\.0\.mlp\.hook_post' \(layer 0"),
    "dictionary_learning class": (lambda r: _plant_dl(r, "CrossCoder"), {},
                                  r"config\.json: trainer\.dict_class 'CrossCoder' is not a dictionary_learning class"),
    "dictionary_learning identity": (lambda r: _plant_dl(r, "IdentityDict"), {}, r"trainer\.dict_class 'IdentityDict'"),
    "dictionary_learning threshold": (lambda r: _plant_dl(r, threshold=-1.0), {}, r"threshold -1 was never estimated"),
    "dictionary_learning layer": (lambda r: _plant_dl(r, layer=2), {}, r"trainer\.layer 2, but this run reads"),
    "dictionary_learning width": (lambda r: _plant_dl(r, activation_dim=D_IN * 2), {},
                                  rf"trainer\.activation_dim {D_IN * 2}, but the model's activations"),
    "dictionary_learning backup": (_backup, {}, r"ae\.pt is a training backup \(step 500\)"),
    "sparsify transcoder": (lambda r: _plant_sparsify(r, transcode=True), {"hook": "blocks.0.hook_mlp_out"}, r"transcode true"),
    "sparsify skip": (lambda r: _plant_sparsify(r, skip_connection=True), {"hook": "blocks.0.hook_mlp_out"}, r"skip_connection true"),
    "sparsify groupmax": (lambda r: _plant_sparsify(r, activation="groupmax"), {"hook": "blocks.0.hook_mlp_out"},
                          r"activation 'groupmax'"),
    "sparsify hookpoint": (lambda r: _plant_sparsify(r, "layers.1"), {"hook": "blocks.0.hook_resid_post"},
                           r"hookpoint 'layers\.1' \(the folder's name\) is 'blocks\.1\.hook_resid_post', but this run reads"),
    "sparsify site": (lambda r: _plant_sparsify(r, "layers.0.self_attn"), {"hook": "blocks.0.hook_resid_post"},
                      r"hookpoint 'layers\.0\.self_attn' \(the folder's name\) is none of the sites"),
    "sparsify gated act": (lambda r: _plant_sparsify(r, "layers.0.mlp.act_fn"), {}, r"hookpoint 'layers\.0\.mlp\.act_fn'"),
    "sparsify width": (lambda r: _plant_sparsify(r), {"hook": "blocks.0.hook_mlp_out", "d_in": 16},
                       r"cfg\.json: d_in 12, but the model's activations at 'blocks\.0\.hook_mlp_out' have width 16"),
    "no files": (lambda r: (r / "src").mkdir() or r / "src", {}, r"no SAE files featureflow reads in"),
    "two formats": (_ambiguous, {}, r"holds the files of saelens and sparsify SAEs; set `format`"),
    "format says otherwise": (_plant_saelens, {"fmt": "gemma_scope"}, r"no params\.npz in"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_unsupported_input_is_one_line_naming_the_folder(tmp_path, case):
    plant, kw, message = BAD[case]
    folder = plant(tmp_path)
    path = kw.pop("path", None)
    source = folder if path is None else tmp_path
    with pytest.raises(ConfigError, match=message) as err:
        run(tmp_path, source, path=path, **kw)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"config key 'models.lua.sae.pretrained' ('{source}'"), text
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.import-*")), "nothing written"


def test_an_explicit_format_is_read_and_the_schema_takes_only_known_ones(tmp_path):
    from featureflow.plan import load_plan
    from helpers import SCHEMA

    w = gemma_folder(tmp_path / "g")
    run(tmp_path, tmp_path / "g", fmt="gemma_scope")
    assert load_sae(tmp_path / "out").architecture.name == "jumprelu" and imported(tmp_path)["format"] == "gemma_scope"
    assert torch.equal(load_sae(tmp_path / "out").weights["threshold"].double(), w["threshold"])
    (tmp_path / "text.txt").write_text("hello world\n")
    base = {"corpora": {"text": {"files": ["text.txt"]}}}

    def plan(sae: dict):
        return load_plan({**base, "models": {"m": {"pretrained": "owner/name", "data": ["text"], "sae": sae}}}, SCHEMA, tmp_path)

    assert plan({"pretrained": "o/sae", "format": "sparsify"}).sae_source("m")["format"] == "sparsify"
    assert "format" not in plan({"pretrained": "o/sae"}).sae_source("m"), "params of runs from before the key are unchanged"
    assert "format" not in plan({"pretrained": "o/sae"}).pretrained_source("m")
    with pytest.raises(ConfigError, match=r"models\.m\.sae\.format") as err:
        plan({"pretrained": "o/sae", "format": "npz"})
    assert "\n" not in str(err.value)
