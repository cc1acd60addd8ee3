"""The plain-torch Mistral forward (featureflow.lm.native) against transformers' MistralForCausalLM."""

import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForCausalLM, MistralConfig, MistralForCausalLM

from featureflow.lm import save_model
from featureflow.lm.native import NativeMistral, load_for_inference, load_for_training, native_config
from featureflow.paths import GENERATION_CONFIG, MODEL_CONFIG, MODEL_WEIGHTS
from featureflow.sae import hook_activations, output_map, spliced
from helpers import REPO


def _save(folder, seed=0, **shape):
    """A randomly initialised Mistral (weights scaled up, so that attention is far from uniform) saved to `folder`."""
    cfg = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=4, max_position_embeddings=24, rope_theta=10000.0, sliding_window=None,
               tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = MistralForCausalLM(MistralConfig(**{**cfg, **shape}))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    model.save_pretrained(folder)
    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)


@pytest.mark.parametrize("shape", [{}, {"num_key_value_heads": 2, "num_hidden_layers": 1}, {"rope_theta": 500.0}])
def test_native_logits_and_hooks_are_bit_identical_to_transformers(tmp_path, shape):
    hf = _save(tmp_path, **shape)
    native = load_for_inference(tmp_path)
    assert isinstance(native, NativeMistral) and not native.training
    assert set(native.state_dict()) == set(hf.state_dict())
    torch.manual_seed(1)
    for batch, pos in [(1, 1), (1, 24), (5, 24), (3, 7)]:
        ids = torch.randint(0, 97, (batch, pos))
        with torch.no_grad():
            assert torch.equal(native(input_ids=ids).logits, hf(input_ids=ids).logits), (batch, pos)
        for hook in ("blocks.0.mlp.hook_post", "blocks.0.hook_mlp_out", "blocks.0.hook_resid_post"):
            assert torch.equal(hook_activations(native, ids, hook), hook_activations(hf, ids, hook)), hook
    ids = torch.randint(0, 97, (4, 24))
    halve = lambda acts: acts * 0.5  # noqa: E731
    with torch.no_grad(), spliced(native, "blocks.0.mlp.hook_post", halve):
        spliced_native = native(input_ids=ids).logits
    with torch.no_grad(), spliced(hf, "blocks.0.mlp.hook_post", halve):
        spliced_hf = hf(input_ids=ids).logits
    assert torch.equal(spliced_native, spliced_hf)
    with torch.no_grad():
        assert not torch.equal(spliced_native, native(input_ids=ids).logits)  # the splice did act
    assert torch.equal(output_map(native, "blocks.0.mlp.hook_post"), output_map(hf, "blocks.0.mlp.hook_post"))


def test_state_dicts_load_across_the_two(tmp_path):
    """The merge sweep loads merged weights into the model it holds with load_state_dict (strict)."""
    hf = _save(tmp_path / "a", seed=0)
    other = _save(tmp_path / "b", seed=1)
    native = load_for_inference(tmp_path / "a")
    native.load_state_dict(other.state_dict())
    ids = torch.randint(0, 97, (2, 24))
    with torch.no_grad():
        assert torch.equal(native(input_ids=ids).logits, other(input_ids=ids).logits)
        assert not torch.equal(native(input_ids=ids).logits, hf(input_ids=ids).logits)


@pytest.mark.parametrize("change", [{"sliding_window": 16}, {"tie_word_embeddings": True}, {"hidden_act": "gelu"},
                                    {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}},
                                    {"model_type": "llama"}, {"rms_norm_eps": None}])
def test_configs_it_does_not_know_go_to_transformers(tmp_path, change):
    _save(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert native_config(tmp_path) is not None
    (tmp_path / "config.json").write_text(json.dumps({**cfg, **change}))
    assert native_config(tmp_path) is None


def test_unsupported_folder_loads_through_transformers(tmp_path):
    _save(tmp_path, sliding_window=16)
    model = load_for_inference(tmp_path)
    assert type(model).__name__ == "MistralForCausalLM" and not model.training


def test_loading_natively_does_not_import_transformers(tmp_path):
    """The point of the module: an evaluation job skips transformers' seconds-long import."""
    _save(tmp_path)
    code = ("import sys, torch; from featureflow.lm import load_for_inference; "
            f"m = load_for_inference({str(tmp_path)!r}); m(input_ids=torch.zeros(1, 5, dtype=torch.long)); "
            "print(type(m).__name__, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["NativeMistral", "False"], out.stderr[-2000:]


def _fine_tune(model, steps=4):
    """A few clipped AdamW steps on seeded batches whose first row starts with pad tokens (id 5)."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    g, losses = torch.Generator().manual_seed(1), []
    for _ in range(steps):
        ids = torch.randint(0, 97, (3, 24), generator=g)
        ids[0, :4] = 5
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses), model.state_dict()


def test_fine_tuning_natively_takes_the_same_steps_as_transformers(tmp_path):
    """Losses and weights after clipped AdamW steps, bit for bit: same loss (the last position
    ignored), same gradients (the pad token's embedding row gets none), same parameter order."""
    _save(tmp_path, pad_token_id=5)
    native, hf = load_for_training(tmp_path), AutoModelForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32)
    assert isinstance(native, NativeMistral)
    assert [n for n, _ in native.named_parameters()] == [n for n, _ in hf.named_parameters()]
    (loss_n, after_n), (loss_h, after_h) = _fine_tune(native), _fine_tune(hf)
    assert torch.equal(loss_n, loss_h) and loss_n[-1] < loss_n[0]
    assert all(torch.equal(after_n[k], after_h[k]) for k in after_h)
    _save(tmp_path / "no_pad")  # the pad row is what tells the two apart: without padding_idx it would learn
    unpadded = load_for_training(tmp_path / "no_pad")
    assert unpadded.model.embed_tokens.padding_idx is None and native.model.embed_tokens.padding_idx == 5


def test_a_native_save_writes_the_bytes_of_save_pretrained(tmp_path):
    hf = _save(tmp_path / "src")
    native = load_for_training(tmp_path / "src")
    with torch.no_grad():
        for p in hf.parameters():
            p.mul_(1.5)
    native.load_state_dict(hf.state_dict())
    save_model(hf, tmp_path / "src", tmp_path / "hf")
    save_model(native, tmp_path / "src", tmp_path / "native")
    for name in (MODEL_WEIGHTS, MODEL_CONFIG, GENERATION_CONFIG):
        assert (tmp_path / "native" / name).read_bytes() == (tmp_path / "hf" / name).read_bytes(), name
    assert (tmp_path / "native" / MODEL_WEIGHTS).read_bytes() != (tmp_path / "src" / MODEL_WEIGHTS).read_bytes()


def test_a_folder_without_a_generation_config_trains_through_transformers(tmp_path):
    """save_pretrained would write one that a native save cannot copy: such a parent takes transformers' class."""
    _save(tmp_path)
    (tmp_path / GENERATION_CONFIG).unlink()
    assert type(load_for_training(tmp_path)).__name__ == "MistralForCausalLM"


def test_fine_tuning_and_saving_natively_does_not_import_transformers(tmp_path):
    _save(tmp_path / "parent")
    code = ("import sys, torch; from featureflow.lm import load_for_training, save_model; "
            f"m = load_for_training({str(tmp_path / 'parent')!r}); ids = torch.zeros(1, 5, dtype=torch.long); "
            f"m(input_ids=ids, labels=ids).loss.backward(); save_model(m, {str(tmp_path / 'parent')!r}, {str(tmp_path / 'child')!r}); "
            "print(type(m).__name__, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.stdout.split() == ["NativeMistral", "False"], out.stderr[-2000:]
    assert (tmp_path / "child" / MODEL_WEIGHTS).exists()


def test_sampling_streaming_and_merge_checks_import_neither_torch_nor_transformers(tmp_path):
    """Start-up bound jobs stay light: drawing the common sample and streaming a corpus never import
    torch (`datasets` would, for DataLoader workers), the merge sweep's checks never import
    transformers' model classes."""
    import numpy as np

    for name in ("x", "y"):
        np.save(tmp_path / f"{name}.npy", np.arange(500, dtype=np.uint16))
    for i in range(2):  # two shards: the stream is shuffled by shard, a second IterableDataset
        (tmp_path / f"part-{i}.jsonl").write_text("".join(json.dumps({"text": f"doc {i} {j}"}) + "\n" for j in range(3)))
    for name in ("a", "b"):
        _save(tmp_path / name)
        (tmp_path / name / "tokenizer.json").write_text("{}")
    root = str(tmp_path)
    code = f"""
import sys
from featureflow.flow import draw_common_sample
from featureflow.data.sources import iter_dataset_documents
sample = draw_common_sample({{"x": {root!r} + "/x.npy", "y": {root!r} + "/y.npy"}}, 96, 24, 0)
spec = {{"path": "json", "data_files": {root!r} + "/part-*.jsonl", "split": "train", "text_field": "text"}}
docs = list(iter_dataset_documents("c", spec, 0))
print(len(sample["blocks"]), len(docs), "torch" in sys.modules)
from featureflow.merge.sweep import check_mergeable
check_mergeable({{"a": {root!r} + "/a", "b": {root!r} + "/b"}})
print("transformers" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.split() == ["4", "6", "False", "False"], out.stderr[-2000:]


def test_jobs_that_read_matches_or_feature_statistics_do_not_import_numba(tmp_path):
    """numba costs ~0.5 s per process: only the jobs that correlate or compute statistics load it. The
    modules of classify, criteria, controls, widths, the null's thresholds, browser, case studies and
    autointerp load without it and read a matches file; computing feature statistics then does load it."""
    code = f"""
import sys
import numpy as np
import scipy.sparse as sp
import featureflow.analysis.browser, featureflow.analysis.case_studies, featureflow.interp.jobs
import featureflow.flow.classes, featureflow.flow.controls, featureflow.flow.matching, featureflow.flow.null, featureflow.flow.widths
from featureflow.flow import Matches, load_matches, save_matches
m = Matches(np.zeros((2, 1), np.int32), np.ones((2, 1), np.float32), np.zeros((3, 1), np.int32), np.ones((3, 1), np.float32),
            np.ones(2, bool), np.ones(3, bool), 5)
save_matches({str(tmp_path)!r} + "/m.npz", m, {{"source": "a"}})
back, meta = load_matches({str(tmp_path)!r} + "/m.npz")
print(back.n_rows, meta["source"], "numba" in sys.modules)
from featureflow.analysis.features import StatsSizes, feature_stats
stats = feature_stats(sp.csr_matrix(np.eye(4, dtype=np.float32)), np.arange(4), 4, StatsSizes(2, 2, 1, 4))
print(stats["fires"].tolist(), "numba" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.stdout.split() == ["5", "a", "False", "[1,", "1,", "1,", "1]", "True"], out.stderr[-2000:]
