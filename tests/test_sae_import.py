"""Importing an SAELens-format SAE instead of training one (featureflow.sae.imports): the features and
reconstruction equal SAELens' standard SAE's, a featureflow SAE round-trips, every refusal is one
line naming the model and the key, a hub snapshot resolves from the cache without the network, and
the training curves draw nothing for the (header-only) training log."""

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from featureflow.config import ConfigError
from featureflow.curves import curves_figure, read_log, redraw
from featureflow.lineage import Pretrained
from featureflow.paths import SAE_CFG, SAE_EXTRA, SAE_WEIGHTS, TRAIN_LOG, ResultPaths
from featureflow.sae import load_sae, load_sae_weights
from featureflow.sae.architectures import STANDARD, log_fields
from featureflow.sae.imports import import_sae
from featureflow.sae.model import SparseAutoencoder, saelens_cfg, save_sae

HOOK = "blocks.0.mlp.hook_post"
D_IN, D_SAE = 12, 40


def saelens_folder(folder: Path, *, seed: int = 0, apply_b_dec: bool | None = True, dtype=torch.float32, cfg_extra=None,
                   drop=(), extra_tensors=None, v6: bool = False) -> dict[str, torch.Tensor]:
    """Write an SAELens 'standard' SAE (random weights, decoder rows not of unit norm) into `folder`;
    `v6` puts hook_name and model_name under `metadata` as SAELens 6 does. Returns its float64 weights."""
    gen = torch.Generator().manual_seed(seed)
    w = {"W_enc": torch.randn(D_IN, D_SAE, generator=gen) * 0.5, "W_dec": torch.randn(D_SAE, D_IN, generator=gen) * 0.3,
         "b_enc": torch.randn(D_SAE, generator=gen) * 0.2, "b_dec": torch.randn(D_IN, generator=gen)}
    w = {k: v.to(dtype) for k, v in w.items() if k not in drop} | (extra_tensors or {})
    folder.mkdir(parents=True, exist_ok=True)
    save_file(w, str(folder / SAE_WEIGHTS))
    cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "dtype": str(dtype).removeprefix("torch."),
           "device": "cuda", "activation_fn_str": "relu", "normalize_activations": "none", "context_size": 128,
           "dataset_path": "someone/some-data", "training_tokens": 123_000_000, "finetuning_scaling_factor": False}
    names = {"hook_name": HOOK, "model_name": "their-model", "hook_head_index": None}
    cfg |= {"metadata": names} if v6 else names
    if apply_b_dec is not None:
        cfg["apply_b_dec_to_input"] = apply_b_dec
    cfg |= cfg_extra or {}
    (folder / SAE_CFG).write_text(json.dumps({k: v for k, v in cfg.items() if v != "DROP"}))
    return {k: v.double() for k, v in w.items()}


def saelens_encode(w: dict[str, torch.Tensor], x: torch.Tensor, apply_b_dec: bool) -> torch.Tensor:
    """SAELens' standard SAE, written out naively in float64."""
    sae_in = x - w["b_dec"] * apply_b_dec
    return torch.relu(sae_in @ w["W_enc"] + w["b_enc"])


def saelens_decode(w: dict[str, torch.Tensor], f: torch.Tensor) -> torch.Tensor:
    return f @ w["W_dec"] + w["b_dec"]


def run_import(tmp_path: Path, source: str, *, model: str = "lua", hook_name: str = HOOK, d_in: int = D_IN,
               path: str | None = None, revision: str | None = None, cache_dir=None, out: str = "out",
               fmt: str = "auto") -> dict:
    return import_sae(model=model, source=Pretrained(source=source, revision=revision, path=path, format=fmt),
                      out_dir=tmp_path / out, hook_name=hook_name, d_in=d_in, cache_dir=cache_dir)


def activations(n: int = 500, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, D_IN, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2


@pytest.mark.parametrize("apply_b_dec", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_imported_features_and_reconstruction_equal_saelens_standard_encode(tmp_path, apply_b_dec, dtype):
    w = saelens_folder(tmp_path / "src" / "blocks.0", apply_b_dec=apply_b_dec, dtype=dtype, v6=apply_b_dec)
    extra = run_import(tmp_path, str(tmp_path / "src"), path="blocks.0")
    x = activations()
    ours = load_sae(tmp_path / "out")
    assert all(v.dtype == torch.float32 for v in ours.weights.values())
    f_ref = saelens_encode(w, x, apply_b_dec)
    f = ours.encode(x.float())
    assert (f_ref > 0).float().mean() > 0.2, "the test exercises active features"
    torch.testing.assert_close(f.double(), f_ref, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(ours.decode(f).double(), saelens_decode(w, f_ref), atol=5e-5, rtol=1e-5)
    assert torch.equal(ours.weights["W_dec"].double(), w["W_dec"]) and torch.equal(ours.weights["b_dec"].double(), w["b_dec"])  # kept as they are
    assert torch.equal(ours.weights["W_enc"].double(), w["W_enc"])
    imported = extra["imported"]
    assert imported["b_dec_folded_into_b_enc"] is (not apply_b_dec) and imported["apply_b_dec_to_input"] is apply_b_dec
    assert imported["decoder_rows_unit_norm"] is False and imported["decoder_row_norm"]["max"] > 1.1
    assert imported["original_dtypes"]["W_enc"] == str(dtype).removeprefix("torch.")
    cfg = json.loads((tmp_path / "out" / SAE_CFG).read_text())
    assert cfg["architecture"] == "standard" and cfg["apply_b_dec_to_input"] is True and cfg["normalize_activations"] == "none"
    assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"]) == (D_IN, D_SAE, "float32")
    assert cfg["metadata"]["model_name"] == "lua" and cfg["metadata"]["hook_name"] == HOOK
    assert cfg["metadata"]["context_size"] == 128 and cfg["metadata"]["dataset_path"] == "someone/some-data"


def test_extra_json_says_imported_with_nothing_folded(tmp_path):
    saelens_folder(tmp_path / "src")
    extra = run_import(tmp_path, str(tmp_path / "src"))
    assert json.loads((tmp_path / "out" / SAE_EXTRA).read_text()) == extra
    assert extra["origin"] == "imported" and extra["model"] == "lua" and extra["steps"] == 0
    assert extra["activation_scale"] == 1.0 and extra["activation_mean_folded_into"] is None and extra["scale_folded_into"] is None
    assert extra["settings"] == {"hook": HOOK, "tokens": 123_000_000}  # the report's "SAE training tokens"
    imported = extra["imported"]
    assert (imported["source"], imported["path"], imported["revision"], imported["commit"]) == (str(tmp_path / "src"), None, None, None)
    assert imported["original_cfg"]["d_sae"] == D_SAE and imported["on_hub"] is False


def test_a_missing_apply_b_dec_key_means_saelens_default_true(tmp_path):
    w = saelens_folder(tmp_path / "src", apply_b_dec=None)
    run_import(tmp_path, str(tmp_path / "src"))
    x = activations()
    torch.testing.assert_close(load_sae(tmp_path / "out").encode(x.float()).double(), saelens_encode(w, x, True),
                               atol=2e-5, rtol=1e-5)


def test_a_finetuning_scaling_factor_is_folded_into_the_decoder(tmp_path):
    factor = torch.linspace(0.5, 2.0, D_SAE)
    w = saelens_folder(tmp_path / "src", cfg_extra={"finetuning_scaling_factor": True},
                       extra_tensors={"finetuning_scaling_factor": factor})
    extra = run_import(tmp_path, str(tmp_path / "src"))
    x = activations()
    ours = load_sae(tmp_path / "out")
    f = saelens_encode(w, x, True)
    torch.testing.assert_close(ours.decode(ours.encode(x.float())).double(), (f * factor.double()) @ w["W_dec"] + w["b_dec"],
                               atol=5e-5, rtol=1e-5)
    assert extra["imported"]["finetuning_scaling_factor_folded_into_W_dec"] is True


def test_a_featureflow_sae_round_trips_unchanged(tmp_path):
    sae = SparseAutoencoder(D_IN, D_SAE, seed=3)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        sae.W_enc.copy_(torch.randn(D_IN, D_SAE, generator=gen))
        sae.b_enc.copy_(torch.randn(D_SAE, generator=gen) * 0.1)
        sae.b_dec.copy_(torch.randn(D_IN, generator=gen) * 0.1)
        sae.mean.copy_(torch.randn(D_IN, generator=gen))
        sae.scale.fill_(0.37)
    trained = tmp_path / "trained"
    save_sae(sae, trained, saelens_cfg(sae, "base", HOOK, 24, "tokens.npy"), {"activation_scale": 0.37})
    (trained / TRAIN_LOG).write_text(",".join(log_fields(STANDARD)) + "\n1,72,0.51,0.5,1.0,3.0,0.0,0.0001,0.0003\n")
    extra = run_import(tmp_path, str(trained))
    before, after = load_sae_weights(trained), load_sae_weights(tmp_path / "out")
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)
    x = activations().float()
    with torch.no_grad():
        torch.testing.assert_close(load_sae(tmp_path / "out").encode(x), sae.encode(x * sae.scale), atol=1e-5, rtol=1e-5)
    assert extra["imported"]["decoder_rows_unit_norm"] is False  # W_dec / scale: rows of norm 1 / 0.37
    assert extra["imported"]["decoder_row_norm"]["min"] == pytest.approx(1 / 0.37, rel=1e-5)
    sae.scale.fill_(1.0)
    save_sae(sae, tmp_path / "unit", saelens_cfg(sae, "base", HOOK, 24, "tokens.npy"), {})
    assert run_import(tmp_path, str(tmp_path / "unit"), out="out2")["imported"]["decoder_rows_unit_norm"] is True


REFUSALS = {
    "architecture": ({"cfg_extra": {"architecture": "matching_pursuit"}}, {}, r"cfg\.json: architecture 'matching_pursuit'"),
    "activation": ({"cfg_extra": {"activation_fn_str": "topk"}}, {}, r"cfg\.json: activation_fn 'topk'"),
    "hook_name": ({}, {"hook_name": "blocks.1.mlp.hook_post"},
                  r"cfg\.json: hook_name 'blocks\.0\.mlp\.hook_post', but this run reads 'blocks\.1\.mlp\.hook_post' \(config key 'sae\.hook'\)"),
    "hook_name_v6": ({"v6": True, "cfg_extra": {"metadata": {"hook_name": "blocks.0.hook_resid_post"}}}, {},
                     r"cfg\.json: hook_name 'blocks\.0\.hook_resid_post'"),
    "d_in": ({}, {"d_in": D_IN + 1}, rf"cfg\.json: d_in {D_IN}, but the model's activations at 'blocks\.0\.mlp\.hook_post' have width {D_IN + 1}"),
    "d_sae": ({"cfg_extra": {"d_sae": D_SAE * 2}}, {}, rf"sae_weights\.safetensors: d_sae {D_SAE * 2} in cfg\.json, but the weights have {D_SAE}"),
    "d_in_weights": ({"cfg_extra": {"d_in": "DROP"}}, {"d_in": D_IN + 1},
                     r"sae_weights\.safetensors: W_enc has shape \[12, 40\], expected \[13, 40\]"),
    "W_dec_shape": ({"drop": ("W_dec",), "extra_tensors": {"W_dec": torch.zeros(D_SAE + 1, D_IN)}}, {},
                    r"sae_weights\.safetensors: W_dec has shape \[41, 12\], expected \[40, 12\]"),
    "normalize": ({"cfg_extra": {"normalize_activations": "expected_average_only_in"}}, {},
                  r"cfg\.json: normalize_activations 'expected_average_only_in'; .*cannot reproduce"),
    "missing_tensor": ({"drop": ("b_enc",)}, {}, r"sae_weights\.safetensors: no tensor b_enc"),
    "other_tensor": ({"extra_tensors": {"threshold": torch.zeros(D_SAE)}}, {}, r"sae_weights\.safetensors: tensor threshold is not part"),
    "non_finite": ({"extra_tensors": {"b_dec": torch.full((D_IN,), float("nan"))}}, {}, r"b_dec holds non-finite values"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_refusal_is_one_line_naming_the_model_and_the_key(tmp_path, case):
    folder_kw, call_kw, message = REFUSALS[case]
    saelens_folder(tmp_path / "src", **folder_kw)
    with pytest.raises(ConfigError, match=message) as err:
        run_import(tmp_path, str(tmp_path / "src"), model="lua", **call_kw)
    text = str(err.value)
    assert "\n" not in text and text.startswith("config key 'models.lua.sae.pretrained'"), text
    assert not (tmp_path / "out").exists(), "nothing written"


def test_missing_files_and_folders_are_one_line(tmp_path):
    saelens_folder(tmp_path / "src")
    (tmp_path / "src" / SAE_WEIGHTS).unlink()
    cases = {
        str(tmp_path / "src"): r"no sae_weights\.safetensors in",
        str(tmp_path / "nowhere"): r"folder '.*nowhere' not found",
        str(tmp_path): r"no SAE files featureflow reads in '[^']*' \(found: src; it reads SAELens cfg\.json",
    }
    for source, message in cases.items():
        with pytest.raises(ConfigError, match=r"^config key 'models\.lua\.sae\.pretrained'.*" + message):
            run_import(tmp_path, source)
    with pytest.raises(ConfigError, match=r"folder '.*src/blocks\.9' not found"):
        run_import(tmp_path, str(tmp_path / "src"), path="blocks.9")
    with pytest.raises(ConfigError, match=r"'revision' applies to hub ids"):
        run_import(tmp_path, str(tmp_path / "src"), revision="main")
    (tmp_path / "src" / SAE_CFG).write_text("{not json")
    with pytest.raises(ConfigError, match=r"cfg\.json is not valid JSON"):
        run_import(tmp_path, str(tmp_path / "src"))
    (tmp_path / "src" / SAE_CFG).unlink()
    with pytest.raises(ConfigError, match=r"no cfg\.json in '.*src' \(an SAELens SAE folder holds"):
        run_import(tmp_path, str(tmp_path / "src"), fmt="saelens")
    assert not (tmp_path / "out").exists()


@pytest.fixture
def offline_hub(monkeypatch):
    """The hub switched off as a workflow job starts with it (common.smk), by the user too, so that
    hub_access leaves it off; huggingface_hub read HF_HUB_OFFLINE at import, so its constant is set too."""
    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")
        monkeypatch.setenv("FEATUREFLOW_USER_" + var, "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def hub_cache_snapshot(cache_dir: Path, repo: str, commit: str, sae_path: str) -> dict[str, torch.Tensor]:
    """A repository as huggingface_hub's cache holds it, under the `data_cache` layout of hub_access (<cache>/hub)."""
    storage = cache_dir / "hub" / f"models--{repo.replace('/', '--')}"
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(commit)
    return saelens_folder(storage / "snapshots" / commit / sae_path, apply_b_dec=False)


def test_a_hub_sae_in_the_cache_resolves_without_network(tmp_path, offline_hub):
    commit = "0123456789abcdef0123456789abcdef01234567"
    w = hub_cache_snapshot(tmp_path / "cache", "someone/tiny-saes", commit, "blocks.0.mlp.hook_post")
    for revision in (None, "main", commit):
        extra = run_import(tmp_path, "someone/tiny-saes", path="blocks.0.mlp.hook_post", revision=revision,
                           cache_dir=tmp_path / "cache")
        imported = extra["imported"]
        assert imported["commit"] == commit and imported["on_hub"] is True and imported["revision"] == revision
        assert imported["source"] == "someone/tiny-saes" and imported["path"] == "blocks.0.mlp.hook_post"
    x = activations()
    torch.testing.assert_close(STANDARD.encode(load_file(str(tmp_path / "out" / SAE_WEIGHTS)), x.float(), {}).double(),
                               saelens_encode(w, x, False), atol=2e-5, rtol=1e-5)


def test_a_hub_sae_missing_from_the_cache_offline_is_one_line(tmp_path, offline_hub):
    commit = "0123456789abcdef0123456789abcdef01234567"
    hub_cache_snapshot(tmp_path / "cache", "someone/tiny-saes", commit, "blocks.0.mlp.hook_post")
    with pytest.raises(ConfigError) as err:
        run_import(tmp_path, "nosuch/repo", path="blocks.0.mlp.hook_post", cache_dir=tmp_path / "cache")
    text = str(err.value)
    assert "\n" not in text and text.startswith("config key 'models.lua.sae.pretrained'"), text
    assert "'nosuch/repo'" in text and "offline" in text, text
    with pytest.raises(ConfigError, match=r"'someone/tiny-saes' has no folder 'blocks\.3\.mlp\.hook_post'"):
        run_import(tmp_path, "someone/tiny-saes", path="blocks.3.mlp.hook_post", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "out").exists()


def test_the_training_log_has_the_header_and_the_curves_draw_nothing_for_it(tmp_path):
    root = tmp_path / "results"
    p = ResultPaths(str(root))
    saelens_folder(tmp_path / "src")
    import_sae(model="lua", source=Pretrained(source=str(tmp_path / "src")), out_dir=p("sae_dir", model="lua"),
               hook_name=HOOK, d_in=D_IN, cache_dir=None)
    log = Path(p("sae_train_log", model="lua"))
    with open(log, newline="") as fh:
        assert list(csv.reader(fh)) == [list(log_fields(STANDARD))]
    assert len(read_log(log)) == 0
    trained = Path(p("sae_train_log", model="base"))  # a trained SAE beside it, with rows
    trained.parent.mkdir(parents=True)
    trained.write_text(",".join(log_fields(STANDARD)) + "\n" + "".join(f"{s},{72 * s},0.51,0.5,1.0,3.0,0.0,0.0001,0.0003\n" for s in (5, 10)))
    Path(p("sae_extra", model="base")).write_text("{}")
    logs = {"base": trained, "lua": log}
    fig = curves_figure("sae", logs, {m: p("sae_extra", model=m) for m in logs})
    assert {t.name for t in fig.data} == {"base"} and len(fig.data) == 4  # one curve per panel, none for lua
    assert "not trained here (no curve): lua" in fig.layout.title.text and "running" not in fig.layout.title.text
    drawn = redraw(root)
    assert "lua not trained here" in drawn["sae"] and "base done (step 10)" in drawn["sae"]
    assert Path(p("sae_curves_html")).exists()
    only = curves_figure("sae", {"lua": log}, {"lua": p("sae_extra", model="lua")})  # only imported SAEs: an empty figure
    assert len(only.data) == 0
