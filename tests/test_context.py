"""The lineage's context length (featureflow.context): one value for every job that cuts blocks, its
defaults, the one-line refusals, and the memory bound of evaluation batches with large vocabularies."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from featureflow.config import ConfigError
from featureflow.context import DEFAULT_PRETRAINED_CONTEXT, check_model_context, max_positions, resolve_context
from featureflow.data import load_blocks
from featureflow.lm.evaluate import LOGITS_BUDGET, eval_memory_mb, logits_batch, next_token_metrics
from featureflow.plan import load_plan
from helpers import SCHEMA
from real_shapes import FAMILIES, family_config, family_model

TEXT = {"corpora": {"text": {"files": ["text.txt"]}}}


def checkpoint(folder: Path, positions: int, key: str = "max_position_embeddings") -> str:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", key: positions}))
    return str(folder)


def plan_of(tmp_path: Path, models: dict, lm: dict | None = None, **extra):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "text.txt").write_text("hello world\n")
    return load_plan({**TEXT, "models": models, "lm": lm or {}, **extra}, SCHEMA, tmp_path)


def test_max_positions_reads_every_family_name_for_it():
    assert {f: max_positions(family_config(f)) for f in FAMILIES} == {
        "llama": 8192, "qwen2": 32768, "mistral": 32768, "gpt2": 1024, "gpt_neox": 2048}
    assert max_positions({"n_positions": 1024}) == 1024 and max_positions({"model_type": "x"}) is None


def test_resolve_context_defaults_and_refusals():
    assert resolve_context(None, 128, {}) == 128, "a lineage trained from scratch: its block_size"
    assert resolve_context(None, None, {"a": 8192}) == DEFAULT_PRETRAINED_CONTEXT
    assert resolve_context(None, None, {"a": 8192, "b": 512}) == 512, "never more than a model supports"
    assert resolve_context(None, 256, {"a": 128}) == 128
    assert resolve_context(4096, None, {"a": 8192}) == 4096
    with pytest.raises(ConfigError, match=r"^config key 'lm.context_size': 512 is above lm.architecture.block_size 256"):
        resolve_context(512, 256, {})
    with pytest.raises(ConfigError) as err:  # models that disagree: the one with fewer positions is named
        resolve_context(2048, None, {"long": 8192, "short": 1024, "mid": 4096})
    assert "model 'short'" in str(err.value) and "1024" in str(err.value) and "\n" not in str(err.value)


def test_plans_resolve_the_context_from_the_config_and_readable_checkpoints(tmp_path):
    scratch = plan_of(tmp_path / "s", {"m": {"train_on": ["text"]}}, {"architecture": {"block_size": 64}})
    assert scratch.context_size == 64 and scratch.train_job("m").context_size == 64
    base = tmp_path / "p"
    models = {"base": {"pretrained": checkpoint(base / "long", 8192), "data": ["text"]},
              "gpt2": {"pretrained": checkpoint(base / "gpt2", 1024, "n_positions"), "parent": "base"},
              "ft": {"parent": "base", "train_on": ["text"]}, "m": {"merge": ["ft", "gpt2"]}}
    plan = plan_of(base, models)
    assert plan.context_size == 1024 and plan.train_job("ft").context_size == 1024
    assert plan.merge_spec("m")["block_size"] == 1024
    assert plan_of(base, models, {"context_size": 512}).context_size == 512
    with pytest.raises(ConfigError) as err:
        plan_of(base, models, {"context_size": 2048})
    line = str(err.value)
    assert "lm.context_size" in line and "'gpt2'" in line and "1024" in line and "2048" in line and "\n" not in line


def test_a_hub_checkpoint_in_the_cache_is_read_at_plan_time_and_one_not_there_keeps_the_default(tmp_path):
    commit = "0" * 40
    repo = tmp_path / "cache" / "hub" / "models--owner--short"
    checkpoint(repo / "snapshots" / commit, 512)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    models = {"a": {"pretrained": "owner/short", "data": ["text"]}, "b": {"pretrained": "owner/elsewhere", "parent": "a"}}
    plan = plan_of(tmp_path, models, data_cache="cache")
    assert plan.context_size == 512
    models["a"]["pretrained"] = "owner/notcached"
    assert plan_of(tmp_path, models, data_cache="cache").context_size == DEFAULT_PRETRAINED_CONTEXT


def test_jobs_refuse_a_context_above_the_model_in_one_line():
    check_model_context(family_config("gpt2"), 1024, "gpt2")
    with pytest.raises(ConfigError) as err:
        check_model_context(family_config("gpt2"), 2048, "gpt2")
    assert str(err.value).startswith("model 'gpt2' supports 1024 positions") and "lm.context_size: 1024" in str(err.value)


def test_too_few_validation_tokens_name_the_corpus_the_split_and_what_to_change(tmp_path):
    path = tmp_path / "results/data/tokens/lua/validation.npy"
    path.parent.mkdir(parents=True)
    np.save(path, np.arange(4802, dtype=np.uint16))
    assert load_blocks(path, 1024, None).shape == (4, 1024)
    for max_tokens in (None, 1000):
        with pytest.raises(ConfigError) as err:
            load_blocks(path, 8192 if max_tokens is None else 1024, max_tokens)
        line = str(err.value)
        assert "corpus 'lua'" in line and "validation tokens" in line and "lm.context_size" in line and "\n" not in line
        assert ("capped at 1000" in line) == (max_tokens is not None)


def test_evaluation_batches_keep_their_logits_within_the_budget_and_give_the_same_metrics():
    assert logits_batch(64, 128, 4096) == 64, "the demo's batches are untouched"
    assert logits_batch(64, 256, 32000) == 32, "the paper's shape: half its blocks at a time"
    assert logits_batch(64, 1024, 49152) == LOGITS_BUDGET // (1024 * 49152) == 5
    assert logits_batch(64, 8192, 151936) == 1
    model = family_model("llama", seed=0)
    blocks = np.random.default_rng(0).integers(0, 400, (3, 1024))
    mb = eval_memory_mb(model, 64, 1024)
    assert mb["logits"] == pytest.approx(3 * 4 * 5 * 1024 * 49152 / 2**20)
    whole = next_token_metrics(model, blocks, batch_size=64)  # capped at 5: all three blocks in one batch
    one_by_one = next_token_metrics(model, blocks, batch_size=1)
    assert whole["tokens"] == one_by_one["tokens"] == 3 * 1023
    assert whole["loss"] == pytest.approx(one_by_one["loss"], rel=1e-5)
    assert whole["accuracy"] == one_by_one["accuracy"]


@pytest.mark.parametrize("family", FAMILIES)
def test_activations_of_real_shaped_checkpoints_stop_at_the_middle_layer(family):
    """Blocks after the hook's layer and the unembedding never run; the activations equal those of a full forward."""
    from featureflow.lm import FAMILIES as HOOK_FAMILIES
    from featureflow.sae.hooks import hook_activations
    from real_shapes import HOOK, N_LAYERS

    model = family_model(family, seed=0)
    layers = model.get_submodule(HOOK_FAMILIES[family].blocks)
    ran = []
    handles = [layer.register_forward_hook(lambda m, a, o, i=i: ran.append(i)) for i, layer in enumerate(layers)]
    handles.append(model.get_output_embeddings().register_forward_hook(lambda m, a, o: ran.append("unembed")))
    ids = torch.randint(0, 400, (2, 24), generator=torch.Generator().manual_seed(0))
    stopped = hook_activations(model, ids, HOOK)
    assert ran == list(range(N_LAYERS // 2)), ran  # the hook's own layer stops inside its MLP
    ran.clear()
    captured = {}
    site = layers[N_LAYERS // 2].get_submodule(HOOK_FAMILIES[family].out_proj)
    handles.append(site.register_forward_pre_hook(lambda m, a: captured.setdefault("x", a[0])))
    with torch.no_grad():
        model(input_ids=ids)
    assert ran == [*range(N_LAYERS), "unembed"]
    torch.testing.assert_close(stopped, captured["x"].float())
    for h in handles:
        h.remove()
