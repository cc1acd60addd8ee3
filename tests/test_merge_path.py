"""Features along the merge path (experiments.merge_path): each parent's SAE on the merge at every t."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from featureflow.config import ConfigError
from featureflow.plan import load_plan
from helpers import REPO, SCHEMA, job_resources

HOOK, D_MLP, D_SAE, VOCAB = "blocks.0.mlp.hook_post", 64, 96, 200


def tiny_mistral(folder, seed):
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    MistralForCausalLM(MistralConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=D_MLP, num_hidden_layers=1,
                                     num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                                     sliding_window=None, tie_word_embeddings=False)).save_pretrained(folder)
    return folder


def saved_sae(folder, seed):
    """An SAE in the saved (raw-activation) form, firing on about half its features."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    w_dec = torch.randn(D_SAE, D_MLP, generator=g)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    folder.mkdir(parents=True)
    save_file({"W_enc": w_dec.T.contiguous() * 10, "W_dec": w_dec * 0.01, "b_enc": torch.zeros(D_SAE), "b_dec": torch.zeros(D_MLP)},
              folder / "sae_weights.safetensors")
    (folder / "cfg.json").write_text('{"architecture": "standard"}')  # what load_sae reads the architecture from
    return folder


@pytest.fixture(scope="module")
def merge_inputs(tmp_path_factory):
    from featureflow.flow.arrays import save_acts
    from featureflow.flow.feature_acts import feature_activations
    from featureflow.flow.merge_path import MergePathFiles

    root = tmp_path_factory.mktemp("merge_path")
    blocks = np.random.default_rng(0).integers(0, VOCAB, size=(40, 12))
    sample = {"blocks": blocks, "digest": np.array("test")}
    np.savez(root / "sample.npz", **sample)
    files = {"model_dirs": {}, "sae_dirs": {}, "acts": {}}
    for role, seed in (("first", 1), ("second", 2)):
        model_dir, sae_dir = tiny_mistral(root / role, seed), saved_sae(root / f"sae_{role}", seed + 10)
        acts = feature_activations(model_dir, sae_dir, blocks, HOOK, "cpu", 128)
        save_acts(acts, sample, role, root / f"acts_{role}.npz")
        files["model_dirs"][role], files["sae_dirs"][role] = str(model_dir), str(sae_dir)
        files["acts"][role] = str(root / f"acts_{role}.npz")
    pd.DataFrame({"t": [0.0, 0.5, 1.0, 0.25]}).to_csv(root / "sweep.csv", index=False)
    return MergePathFiles(**files, sample=str(root / "sample.npz"), sweep_csv=str(root / "sweep.csv")), blocks


def naive_explained_variance(model_dir, sae_dir, blocks):
    from featureflow.lm import load_model
    from featureflow.sae import hook_activations, load_sae

    x = hook_activations(load_model(model_dir).eval(), torch.from_numpy(blocks), HOOK).flatten(0, 1).double()
    sae = load_sae(sae_dir).to(torch.float64)
    recon = sae.decode(sae.encode(x))
    return 1 - ((x - recon) ** 2).sum().item() / ((x - x.mean(0)) ** 2).sum().item()


def test_each_parent_is_itself_at_its_end_of_the_path_and_breaks_in_between(merge_inputs):
    from featureflow.flow.merge_path import MergePathSpec, merge_path_rows

    files, blocks = merge_inputs
    rows = merge_path_rows(MergePathSpec("a", "b", "slerp", HOOK, 0.8, tokens=10_000), files, batch_tokens=120, resources=job_resources())
    assert rows["t"].tolist() == [0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 1.0, 1.0], "the sweep's t values, sorted, both parents"
    at = {(r.t, r.parent): r for r in rows.itertuples()}
    for t, parent, role in ((0.0, "a", "first"), (1.0, "b", "second")):
        r = at[(t, parent)]
        assert r.share_kept == 1.0 and r.mean_corr == pytest.approx(1.0, abs=1e-6), "the merge at its end is the parent"
        assert r.explained_variance == pytest.approx(
            naive_explained_variance(files.model_dirs[role], files.sae_dirs[role], blocks), abs=1e-5)
        assert 0 < r.active_features <= D_SAE and r.l0 > 0
    assert at[(0.0, "b")].share_kept < 0.5 and at[(1.0, "a")].share_kept < 0.5, "another model's activations"
    assert at[(0.25, "a")].share_kept >= at[(1.0, "a")].share_kept
    few = merge_path_rows(MergePathSpec("a", "b", "slerp", HOOK, 0.8, tokens=120), files, batch_tokens=60, resources=job_resources())
    assert few["explained_variance"].iloc[0] == pytest.approx(
        naive_explained_variance(files.model_dirs["first"], files.sae_dirs["first"], blocks[:10]), abs=1e-5), "the first 10 blocks"


def test_the_experiment_is_a_target_only_when_on_and_needs_a_numeric_threshold(tmp_path):
    cfg = yaml.safe_load((REPO / "config/micro.yaml").read_text())
    plan = load_plan(cfg, SCHEMA, REPO)
    assert not any("merge_path" in t for t in plan.targets())
    on = {**cfg, "experiments": {"merge_path": True}}
    plan = load_plan(on, SCHEMA, REPO)
    assert plan.paths("merge_path", model="luastories") in plan.targets()
    inputs = plan.merge_path_inputs("luastories")
    assert inputs["model_dirs"] == {"first": plan.paths("model_dir", model="lua"), "second": plan.paths("model_dir", model="tinystories")}
    assert plan.paths("acts", model="tinystories") in plan.merge_path_files("luastories")
    assert plan.merge_path_spec("luastories") == {"first": "lua", "second": "tinystories", "method": "slerp",
                                                  "hook_name": "blocks.0.mlp.hook_post", "threshold": 0.8, "tokens": 24000}
    with pytest.raises(ConfigError, match="experiments.merge_path"):
        load_plan({**on, "threshold": "null-0.001"}, SCHEMA, REPO)
    json.dumps(inputs)  # a rule param: plain data
