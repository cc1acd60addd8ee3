"""TransformerLens hook names on Hugging Face models of several families (featureflow.sae.hooks).

Tiny models with random weights (seeded) are built from configs; nothing is downloaded.
"""

from types import SimpleNamespace

import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, MistralConfig, PreTrainedTokenizerFast

from featureflow.config import ConfigError
from featureflow.lm import families
from featureflow.lm.families import lm_shape
from featureflow.sae.hooks import check_hook, final_norm, hook_activations, hook_width, output_map, spliced

VOCAB, D_MODEL, N_LAYERS = 97, 32, 2
CONFIGS = {
    "mistral": MistralConfig(vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=64, num_hidden_layers=N_LAYERS,
                             num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, sliding_window=None,
                             tie_word_embeddings=False, bos_token_id=0, eos_token_id=0),
    # n_inner None: GPT-2's MLP is 4 * n_embd wide
    "gpt2": GPT2Config(vocab_size=VOCAB, n_embd=D_MODEL, n_inner=None, n_layer=N_LAYERS, n_head=2, n_positions=64,
                       bos_token_id=0, eos_token_id=0),
    "gpt_neox": GPTNeoXConfig(vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=48, num_hidden_layers=N_LAYERS,
                              num_attention_heads=2, max_position_embeddings=64, rotary_pct=0.25, bos_token_id=0, eos_token_id=0),
}
D_MLP = {"mistral": 64, "gpt2": 4 * D_MODEL, "gpt_neox": 48}
# Written out by hand, not taken from families.FAMILIES: the MLP of layer L and its hidden activation.
MLP_PATH = {"mistral": "model.layers.{}.mlp", "gpt2": "transformer.h.{}.mlp", "gpt_neox": "gpt_neox.layers.{}.mlp"}
OUT_PROJ = {"mistral": "down_proj", "gpt2": "c_proj", "gpt_neox": "dense_4h_to_h"}
MLP_HIDDEN = {
    "mistral": lambda mlp, x: mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x),
    "gpt2": lambda mlp, x: mlp.act(mlp.c_fc(x)),
    "gpt_neox": lambda mlp, x: mlp.act(mlp.dense_h_to_4h(x)),
}
SITES = ("mlp.hook_post", "hook_mlp_out", "hook_resid_post")
FAMILIES = pytest.mark.parametrize("family", list(CONFIGS))


@pytest.fixture(scope="module")
def lms():
    out = {}
    for family, config in CONFIGS.items():
        torch.manual_seed(0)
        out[family] = AutoModelForCausalLM.from_config(config).eval()
        with torch.no_grad():
            for name, p in out[family].named_parameters():
                if name.endswith("bias"):  # transformers initialises them to zero, which would hide a forgotten bias
                    p.normal_(std=0.1)
    return out


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, VOCAB, (3, 12), generator=torch.Generator().manual_seed(1))


def mlp_input(lm, family, layer, ids):
    """The input of layer `layer`'s MLP (its normalised residual), captured by a hook on the MLP module."""
    seen = {}
    handle = lm.get_submodule(MLP_PATH[family].format(layer)).register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    with torch.no_grad():
        lm(input_ids=ids)
    handle.remove()
    return seen["x"]


@FAMILIES
@pytest.mark.parametrize("layer", range(N_LAYERS))
def test_mlp_hook_post_is_the_mlp_hidden_activation(lms, ids, family, layer):
    lm = lms[family]
    mlp = lm.get_submodule(MLP_PATH[family].format(layer))
    with torch.no_grad():
        want = MLP_HIDDEN[family](mlp, mlp_input(lm, family, layer, ids))
    got = hook_activations(lm, ids, f"blocks.{layer}.mlp.hook_post")
    assert got.dtype == torch.float32 and got.shape == (3, 12, D_MLP[family])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@FAMILIES
def test_resid_post_is_the_block_output_before_the_final_norm(lms, ids, family):
    lm = lms[family]
    with torch.no_grad():
        states = lm(input_ids=ids, output_hidden_states=True).hidden_states  # embeddings, then each block; the last one normed
    torch.testing.assert_close(hook_activations(lm, ids, "blocks.0.hook_resid_post"), states[1], rtol=0, atol=1e-6)
    last = hook_activations(lm, ids, f"blocks.{N_LAYERS - 1}.hook_resid_post")
    assert (last - states[-1]).abs().max() > 0.1  # not the normed state
    with torch.no_grad():
        torch.testing.assert_close(final_norm(lm)(last), states[-1], rtol=0, atol=1e-5)


@FAMILIES
def test_capture_stops_the_forward_pass_at_the_hook(lms, ids, family):
    lm = lms[family]
    calls = []
    handle = lm.get_output_embeddings().register_forward_hook(lambda *a: calls.append(1))
    try:
        for site in SITES:
            hook_activations(lm, ids, f"blocks.0.{site}")
        assert calls == []
        with torch.no_grad():
            lm(input_ids=ids)
        assert calls == [1]  # the hook does see a full forward pass
    finally:
        handle.remove()


@FAMILIES
def test_hooks_agree_with_transformerlens(lms, ids, family, tmp_path):
    """TransformerLens' TransformerBridge boots the same checkpoint offline from a folder that holds a tokenizer."""
    from transformer_lens.model_bridge import TransformerBridge

    lm = lms[family]
    lm.save_pretrained(tmp_path)
    vocab = {f"t{i}": i for i in range(VOCAB)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")), bos_token="t0",
                                        eos_token="t0", unk_token="t0", pad_token="t0")
    tokenizer.save_pretrained(tmp_path)
    bridge = TransformerBridge.boot_transformers(str(tmp_path), device="cpu")
    names = {f"blocks.{layer}.{site}" for layer in range(N_LAYERS) for site in SITES}
    _, cache = bridge.run_with_cache(ids, names_filter=lambda n: n in names)
    for name in sorted(names):
        ours = hook_activations(lm, ids, name)
        assert cache[name].shape == ours.shape, name
        torch.testing.assert_close(cache[name], ours, rtol=0, atol=1e-5, msg=name)


@FAMILIES
@pytest.mark.parametrize("site", SITES)
def test_splicing_the_identity_keeps_the_logits_and_zeros_change_them(lms, ids, family, site):
    lm = lms[family]
    name = f"blocks.0.{site}"
    seen = []
    with torch.no_grad():
        clean = lm(input_ids=ids).logits
        with spliced(lm, name, lambda a: seen.append(a) or a):
            same = lm(input_ids=ids).logits
        with spliced(lm, name, torch.zeros_like):
            zeroed = lm(input_ids=ids).logits
        after = lm(input_ids=ids).logits
    torch.testing.assert_close(same, clean, rtol=0, atol=0)
    torch.testing.assert_close(seen[0].float(), hook_activations(lm, ids, name), rtol=0, atol=0)  # fn sees the hook's activations
    assert (zeroed - clean).abs().max() > 1e-3
    torch.testing.assert_close(after, clean, rtol=0, atol=0)  # the splice ends with the block


@FAMILIES
@pytest.mark.parametrize("site", SITES)
def test_hook_width_from_the_config_is_the_captured_width(lms, ids, family, site):
    name = f"blocks.1.{site}"
    width = hook_width(CONFIGS[family], name, family)
    assert width == (D_MLP[family] if site == "mlp.hook_post" else D_MODEL)
    assert hook_activations(lms[family], ids, name).shape[-1] == width


@FAMILIES
def test_output_map_is_the_mlp_output_projection_without_bias(lms, ids, family):
    lm = lms[family]
    out_proj = lm.get_submodule(f"{MLP_PATH[family].format(1)}.{OUT_PROJ[family]}")
    bias = out_proj.bias.detach() if out_proj.bias is not None else torch.zeros(D_MODEL)
    assert (bias.abs().max() > 0) == (family != "mistral")
    with torch.no_grad():
        acts = hook_activations(lm, ids, "blocks.1.mlp.hook_post")
        want = out_proj(acts) - bias
        mlp_out = hook_activations(lm, ids, "blocks.1.hook_mlp_out")
    w = output_map(lm, "blocks.1.mlp.hook_post")
    assert w.shape == (D_MODEL, D_MLP[family])
    torch.testing.assert_close(acts @ w.T, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(acts @ w.T + bias, mlp_out, rtol=0, atol=1e-5)
    for site in ("hook_mlp_out", "hook_resid_post"):
        torch.testing.assert_close(output_map(lm, f"blocks.1.{site}"), torch.eye(D_MODEL))


def test_unknown_hooks_raise_one_line_naming_the_model_and_the_hook(lms, ids):
    lm = lms["mistral"]
    check_hook(lm, "blocks.1.mlp.hook_post", "lua")
    supported = "supported: blocks.<layer>.mlp.hook_post"
    for name in ("blocks.2.mlp.hook_post", "blocks.0.attn.hook_z", "blocks.0.mlp.hook_pre", "mlp.hook_post"):
        with pytest.raises(ConfigError) as err:
            check_hook(lm, name, "lua")
        assert str(err.value).startswith(f"model 'lua' has no hook '{name}' (2 layers; {supported}"), str(err.value)
        assert "\n" not in str(err.value)
        with pytest.raises(ConfigError, match=f"model 'lua' has no hook '{name}'"):
            hook_width(lm.config, name, "lua")
        with pytest.raises(ConfigError, match=f"has no hook '{name}'"):
            hook_activations(lm, ids, name)
    one_layer = MistralConfig(vocab_size=VOCAB, hidden_size=D_MODEL, intermediate_size=64, num_hidden_layers=1,
                              num_attention_heads=2)
    with pytest.raises(ConfigError, match=r"^model 'lua' has no hook 'blocks.3.mlp.hook_post' \(1 layer; "):
        check_hook(one_layer, "blocks.3.mlp.hook_post", "lua")
    with pytest.raises(ConfigError, match=r"^model 'b' has no hook 'blocks.0.mlp.hook_post' \(model_type 'bert'; supported: "
                                          r"mistral, llama, qwen2, gpt2, gpt_neox\)$"):
        check_hook(SimpleNamespace(model_type="bert", num_hidden_layers=2), "blocks.0.mlp.hook_post", "b")


def test_lm_shape_reads_each_family():
    mistral, gpt2, neox = (lm_shape(CONFIGS[f]) for f in ("mistral", "gpt2", "gpt_neox"))
    assert mistral == families.LMShape(D_MODEL, 64, N_LAYERS, 2, VOCAB, gated=True, tied=False)
    assert gpt2 == families.LMShape(D_MODEL, 4 * D_MODEL, N_LAYERS, 2, VOCAB, gated=False, tied=True)
    assert neox == families.LMShape(D_MODEL, 48, N_LAYERS, 2, VOCAB, gated=False, tied=False)
    torch.manual_seed(0)
    n = sum(p.numel() for p in AutoModelForCausalLM.from_config(CONFIGS["mistral"]).parameters())
    assert mistral.params == n  # Mistral has no biases: the count is exact


class _ToyBlock(torch.nn.Module):
    """A block that returns its hidden state first in a tuple, as some families do."""

    def __init__(self):
        super().__init__()
        self.up, self.down = torch.nn.Linear(8, 16), torch.nn.Linear(16, 8)

    def forward(self, x):
        return x + self.down(torch.relu(self.up(x))), "cache"


class _ToyLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(model_type="toy", num_hidden_layers=2, hidden_size=8, name_or_path="toy")
        self.embed, self.blocks, self.head = torch.nn.Embedding(VOCAB, 8), torch.nn.ModuleList([_ToyBlock(), _ToyBlock()]), \
            torch.nn.Linear(8, VOCAB)

    def forward(self, input_ids):
        h = self.embed(input_ids)
        for block in self.blocks:
            h = block(h)[0]
        return SimpleNamespace(logits=self.head(h))

    def get_output_embeddings(self):
        return self.head


def test_a_new_family_is_one_table_entry_and_tuple_outputs_work(monkeypatch, ids):
    family = families.Family("blocks", "down", "head", lambda c: 16, gated=False)
    monkeypatch.setitem(families.FAMILIES, "toy", family)
    torch.manual_seed(0)
    lm = _ToyLM()
    with torch.no_grad():
        h0 = lm.blocks[0](lm.embed(ids))[0]
        post1 = torch.relu(lm.blocks[1].up(h0))
        clean = lm(input_ids=ids).logits
        torch.testing.assert_close(hook_activations(lm, ids, "blocks.0.hook_resid_post"), h0)
        torch.testing.assert_close(hook_activations(lm, ids, "blocks.1.mlp.hook_post"), post1)
        with spliced(lm, "blocks.0.hook_resid_post", lambda a: a):
            torch.testing.assert_close(lm(input_ids=ids).logits, clean, rtol=0, atol=0)
        with spliced(lm, "blocks.1.hook_resid_post", torch.zeros_like):
            zeroed = lm(input_ids=ids).logits
    torch.testing.assert_close(zeroed, lm.head.bias.expand_as(zeroed))
