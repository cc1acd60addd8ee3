"""Merging: SLERP/linear/TIES semantics, agreement with mergekit, equilibrium picking, errors."""

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from featureflow.config import ConfigError
from featureflow.data import build_tokenizer
from featureflow.lm import build_model, save_model
from featureflow.merge import check_mergeable, find_equilibrium, load_weights, merge_weights, slerp_tensor
from featureflow.settings import MergeSettings, Resources, TokenizerSettings
from helpers import DOC_SEP, architecture, settings

DEMO_SHAPE = {"d_model": 128, "d_mlp": 512, "n_heads": 4, "n_layers": 1, "block_size": 128}
DEMO_ARCH = architecture(**DEMO_SHAPE)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A demo-size 'base' and two 'fine-tunes' of it (base plus different perturbations)."""
    root = tmp_path_factory.mktemp("merge")
    (root / "text.txt").write_text(DOC_SEP.join(f"local x{i} = {i} -- the cat sat" for i in range(200)))
    build_tokenizer(settings(TokenizerSettings, vocab_size=300), [root / "text.txt"], root / "tok")
    base = build_model(DEMO_ARCH, 300, 0, seed=0)
    save_model(base, root / "tok", root / "base")
    for seed, name in ((1, "lua"), (2, "stories")):
        torch.manual_seed(seed)
        ft = build_model(DEMO_ARCH, 300, 0, seed=0)
        with torch.no_grad():
            for p in ft.parameters():
                p.add_(0.5 * p.std() * torch.randn_like(p))
        save_model(ft, root / "tok", root / name)
    return root


@pytest.mark.parametrize("method", ["slerp", "linear"])
def test_endpoints_reproduce_the_inputs_exactly(models, method):
    a, b = load_weights(models / "lua"), load_weights(models / "stories")
    at0, at1 = merge_weights(method, a, b, 0.0), merge_weights(method, a, b, 1.0)
    assert all(torch.equal(at0[k], a[k]) for k in a)
    assert all(torch.equal(at1[k], b[k]) for k in b)


def test_slerp_keeps_the_norm_path_between_unit_vectors():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp_tensor(0.5, a, b)
    torch.testing.assert_close(mid, torch.tensor([2**-0.5, 2**-0.5]))
    torch.testing.assert_close(slerp_tensor(1 / 3, a, b), torch.tensor([np.cos(np.pi / 6), np.sin(np.pi / 6)], dtype=torch.float32))
    same = torch.randn(10)
    torch.testing.assert_close(slerp_tensor(0.3, same, same), same, msg="colinear inputs fall back to linear")


def test_merging_a_model_with_itself_returns_it(models):
    a = load_weights(models / "lua")
    for method in ("slerp", "linear"):
        merged = merge_weights(method, a, a, 0.37)
        assert all(torch.allclose(merged[k], a[k], atol=1e-6) for k in a)


def test_ties_keeps_top_share_and_agreeing_signs():
    base = {"w": torch.zeros(10)}
    first = {"w": torch.arange(1.0, 11.0)}
    second = {"w": -torch.arange(1.0, 11.0)}
    only_first = merge_weights("ties", first, second, 0.0, base)["w"]
    assert torch.equal(only_first, torch.tensor([0.0] * 8 + [9.0, 10.0])), "density 0.2 keeps the 2 largest entries"
    twin = merge_weights("ties", first, {"w": first["w"].clone()}, 0.6, base)["w"]
    assert torch.equal(twin, only_first), "identical task vectors merge to themselves at any t"
    with pytest.raises(ConfigError, match="needs the inputs' common ancestor"):
        merge_weights("ties", first, second, 0.5)


def test_slerp_agrees_with_mergekit(models, tmp_path):
    mergekit_yaml = shutil.which("mergekit-yaml", path=str(Path(sys.executable).parent))
    assert mergekit_yaml, "mergekit is a test dependency (pip install mergekit==0.1.5)"
    t = 0.3
    cfg = {"merge_method": "slerp", "base_model": str(models / "lua"), "dtype": "float32",
           "models": [{"model": str(models / "lua")}, {"model": str(models / "stories")}], "parameters": {"t": t}}
    (tmp_path / "slerp.yml").write_text(yaml.safe_dump(cfg))
    run = subprocess.run([mergekit_yaml, str(tmp_path / "slerp.yml"), str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    from safetensors.torch import load_file

    theirs = {}
    for f in (tmp_path / "out").glob("*.safetensors"):
        theirs.update(load_file(str(f)))
    ours = merge_weights("slerp", load_weights(models / "lua"), load_weights(models / "stories"), t)
    assert theirs.keys() == ours.keys()
    for k in ours:
        torch.testing.assert_close(ours[k], theirs[k], rtol=1e-5, atol=1e-6, msg=k)


def test_equilibrium_is_the_interpolated_crossing():
    ts = np.round(np.arange(0, 1.0001, 0.15), 4)
    t, crossed = find_equilibrium(ts, 0.5 - 0.4 * ts, 0.1 + 0.4 * ts)
    assert crossed and t == pytest.approx(0.5)
    t, crossed = find_equilibrium(np.array([0, 0.5, 1]), np.array([0.3, 0.2, 0.1]), np.array([0.1, 0.2, 0.3]))
    assert (t, crossed) == (0.5, True)
    grid = np.linspace(0, 1, 11)
    t, crossed = find_equilibrium(grid, 0.6 - 0.1 * grid, 0.1 + 0.3 * grid)
    assert (t, crossed) == (1.0, False), "no crossing: the closest point, flagged"


def test_t_outside_unit_interval_is_refused(models):
    a = load_weights(models / "lua")
    with pytest.raises(ConfigError, match=r"merge fraction t=1.2 is outside \[0, 1\]"):
        merge_weights("slerp", a, a, 1.2)


def test_models_of_other_shape_or_tokenizer_cannot_merge(models, tmp_path):
    save_model(build_model(architecture(**{**DEMO_SHAPE, "d_mlp": 256}), 300, 0, seed=0), models / "tok", tmp_path / "narrow")
    with pytest.raises(ConfigError, match=r"cannot merge 'lua' and 'narrow': architectures differ \(d_mlp 512 vs 256\)"):
        check_mergeable({"lua": models / "lua", "narrow": tmp_path / "narrow"})
    shutil.copytree(models / "stories", tmp_path / "retok")
    tok = json.loads((tmp_path / "retok/tokenizer.json").read_text())
    tok["model"]["vocab"]["zzz"] = 299
    (tmp_path / "retok/tokenizer.json").write_text(json.dumps(tok))
    with pytest.raises(ConfigError, match="cannot merge 'lua' and 'retok': their tokenizers differ"):
        check_mergeable({"lua": models / "lua", "retok": tmp_path / "retok"})


def test_fixed_t_is_used_and_choice_compares_with_inputs_and_base(models, tmp_path):
    from featureflow.merge import MergedFiles, MergeSpec, build_merged

    ids = np.random.default_rng(0).integers(0, 300, 4 * 128).astype(np.uint16)
    np.save(tmp_path / "val.npy", ids)
    (tmp_path / "sweep.json").write_text(json.dumps({"equilibrium_t": 0.61, "crossed": True,
                                                     "base": {"model": "base", "lua": {"accuracy": 0.5}, "stories": {"accuracy": 0.25}}}))
    dirs = {n: str(models / n) for n in ("lua", "stories", "base")}
    own = {"lua": [str(tmp_path / "val.npy")], "stories": [str(tmp_path / "val.npy")]}
    spec = MergeSpec("lua", "stories", "base", "slerp", 0.25, dirs, own)
    run = dict(settings=settings(MergeSettings), batch_size=64, resources=Resources.local("cpu", 2))
    choice = build_merged(name="m", spec=spec, files=MergedFiles(sweep_json=tmp_path / "sweep.json", out_dir=tmp_path / "m",
                                                                 choice_json=tmp_path / "choice.json"), **run)
    assert (choice["t"], choice["t_from"]) == (0.25, "config")
    expected = merge_weights("slerp", load_weights(models / "lua"), load_weights(models / "stories"), 0.25)
    written = load_weights(tmp_path / "m")
    assert all(torch.equal(written[k], expected[k]) for k in expected)
    assert choice["merged_vs_base"]["lua"] == pytest.approx(choice["merged_accuracy"]["lua"] / 0.5 - 1)
    auto = build_merged(name="m", spec=dataclasses.replace(spec, t="auto"),
                        files=MergedFiles(sweep_json=tmp_path / "sweep.json", out_dir=tmp_path / "m2", choice_json=tmp_path / "choice2.json"),
                        **run)
    assert (auto["t"], auto["t_from"]) == (0.61, "sweep equilibrium")


def test_models_with_tied_embeddings_load_merged_weights_and_a_missing_matrix_is_refused(tmp_path):
    """A tied checkpoint's safetensors holds the embedding once (no lm_head.weight): the sweep, the merge and
    the merge path load such weights with the unembedding following the embedding; any other gap is an error."""
    from featureflow.merge import load_into
    from real_shapes import family_model

    a, b = family_model("llama", seed=0), family_model("llama", seed=1)
    a.save_pretrained(tmp_path / "a")
    b.save_pretrained(tmp_path / "b")
    wa, wb = load_weights(tmp_path / "a"), load_weights(tmp_path / "b")
    assert "lm_head.weight" not in wa, "save_pretrained stores a tied matrix once"
    load_into(a, merge_weights("slerp", wa, wb, 1.0, None))
    embed = a.get_input_embeddings().weight
    torch.testing.assert_close(embed, wb["model.embed_tokens.weight"])
    assert a.get_output_embeddings().weight.data_ptr() == embed.data_ptr(), "still tied"
    with pytest.raises(RuntimeError, match="missing"):
        load_into(a, {k: v for k, v in wa.items() if k != "model.norm.weight"})
