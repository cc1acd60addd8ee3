"""Bring your own lineage: pretrained checkpoints (local folders, and a hub snapshot read offline) and an
imported SAELens SAE beside trained ones, through the workflow to the report."""

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from featureflow.config import ConfigError
from featureflow.plan import load_plan
from helpers import REPO, SCHEMA, snakemake_local

HUB_ID = "featureflow-test/tiny-ft"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
D_MODEL, D_MLP, D_SAE = 32, 64, 128


def tiny_tokenizer(texts: list[str]):
    from featureflow.data.tokenizer import train_bpe

    return train_bpe(texts, vocab_size=400, min_frequency=2)


def mistral_model(vocab: int, seed: int):
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    return MistralForCausalLM(MistralConfig(vocab_size=vocab, hidden_size=D_MODEL, intermediate_size=D_MLP, num_hidden_layers=1,
                                            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                                            sliding_window=None, tie_word_embeddings=False))


def gpt2_model(vocab: int, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=D_MODEL, n_layer=1, n_head=2, n_positions=64))


def save(model, tok, folder: Path) -> Path:
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def saelens_folder(folder: Path, d_in: int, hook: str, seed: int) -> Path:
    """An SAE as SAELens writes one (architecture standard, decoder rows of unit norm)."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    w_dec = torch.randn(D_SAE, d_in, generator=g)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    folder.mkdir(parents=True)
    save_file({"W_enc": w_dec.T.contiguous(), "W_dec": w_dec, "b_enc": torch.zeros(D_SAE),
               "b_dec": torch.randn(d_in, generator=g) * 1e-3}, folder / "sae_weights.safetensors")
    (folder / "cfg.json").write_text(json.dumps({"architecture": "standard", "d_in": d_in, "d_sae": D_SAE, "hook_name": hook,
                                                 "apply_b_dec_to_input": True, "normalize_activations": "none",
                                                 "dtype": "float32", "model_name": "tiny-ft"}))
    return folder


def hub_snapshot(cache: Path, repo_id: str, source: Path) -> None:
    """`source`'s files laid out as huggingface_hub caches a download of `repo_id` at COMMIT."""
    repo = cache / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(source, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


def pretrained_config(root: Path) -> dict:
    """A lineage of a pretrained Mistral base (local folder), its 'fine-tune' (a hub id read from a cache
    snapshot, with an imported SAE), a GPT-2-family model placed after the base, and a model we
    fine-tune from the pretrained base."""
    micro = yaml.safe_load((REPO / "config" / "micro.yaml").read_text())
    return {
        "seed": 0, "threshold": 0.5, "data_cache": str(root / "cache"), "figures": {"png": False},  # HTML figures only
        "corpora": {c: micro["corpora"][c] | {"max_bytes": 60000} for c in ("english", "python", "lua")},
        "models": {
            "base": {"pretrained": "models/base", "data": ["english", "python"]},
            "ft": {"pretrained": HUB_ID, "revision": "main", "parent": "base", "data": ["python"],
                   "sae": {"pretrained": "saes/release", "path": "blocks.0.mlp.hook_post"}},
            "gpt2": {"pretrained": "models/gpt2", "parent": "base"},
            "lua": {"parent": "base", "train_on": ["lua"]},
        },
        "lm": {"architecture": {"d_model": D_MODEL, "d_mlp": D_MLP, "n_heads": 2, "n_layers": 1, "block_size": 32},
               "finetune": {"tokens": 4000, "batch_size": 8, "lr": 1.0e-3, "warmup_steps": 2}, "eval_tokens": 1024,
               "checkpoint_every": 50, "log_every": 10},
        "sae": {"expansion_factor": 2, "normalize": "unit_rms", "tokens": 4800, "batch_blocks": 16, "lr": 3.0e-3, "l1_coefficient": 5.0e-3,
                "buffer_tokens": 2400, "eval_tokens": 1024, "checkpoint_every": 10, "log_every": 5},
        "acts": {"tokens": 2400, "context_size": 24},
        "correlation": {"top_k": 2},
    }


def build_checkpoints(root: Path) -> None:
    texts = [(REPO / f"data/demo/{c}/{c}.txt").read_text(encoding="utf-8")[:200000] for c in ("english", "python", "lua")]
    tok = tiny_tokenizer(texts)
    base = mistral_model(len(tok), seed=1)
    save(base, tok, root / "models" / "base")
    import torch

    with torch.no_grad():  # a "fine-tune": the base, moved a little
        for p in base.parameters():
            p.add_(0.02 * torch.randn_like(p))
    save(base, tok, root / "staging" / "ft")
    hub_snapshot(root / "cache", HUB_ID, root / "staging" / "ft")
    save(gpt2_model(len(tok), seed=2), tok, root / "models" / "gpt2")
    saelens_folder(root / "saes" / "release" / "blocks.0.mlp.hook_post", D_MLP, "blocks.0.mlp.hook_post", seed=3)


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    (root / "data").symlink_to(REPO / "data")
    build_checkpoints(root)
    cfg = root / "pretrained.yaml"
    cfg.write_text(yaml.safe_dump(pretrained_config(root), sort_keys=False))
    os.environ["HF_HUB_OFFLINE"] = "1"  # the hub id must resolve from the cache alone
    try:
        run = snakemake_local(root, "--configfile", str(cfg), "--replace-workflow-config")
    finally:
        os.environ.pop("HF_HUB_OFFLINE")
    assert run.returncode == 0, run.stderr[-4000:]
    return root, run


def test_pretrained_lineage_runs_to_the_report_training_only_the_fine_tune(pretrained_run):
    root, run = pretrained_run
    results = root / "results"
    assert (results / "index.html").exists() and (results / "reproduction.md").exists()
    trained = {p.parent.name for p in (results / "lm").glob("*/train_meta.json")}
    assert trained == {"lua"}, "pretrained models are fetched, not trained"
    fetched = {p.parent.name: json.loads(p.read_text()) for p in (results / "lm").glob("*/pretrained.json")}
    assert set(fetched) == {"base", "ft", "gpt2"}
    assert fetched["ft"]["on_hub"] and fetched["ft"]["commit"] == COMMIT, "the hub id came from the cache snapshot"
    assert fetched["gpt2"]["model_type"] == "gpt2" and fetched["base"]["model_type"] == "mistral"
    assert json.loads((results / "data/tokenizer/tokenizer_meta.json").read_text())["kind"] == "pretrained"
    with open(results / "flow/counts.csv") as fh:
        edges = {r["edge"] for r in csv.DictReader(fh)}
    assert {"base__ft", "base__gpt2", "base__lua"} <= edges


def test_each_model_family_gets_an_sae_of_its_own_width_and_the_imported_one_is_measured(pretrained_run):
    root, _ = pretrained_run
    results = root / "results"
    cfgs = {m: json.loads((results / f"sae/{m}/cfg.json").read_text()) for m in ("base", "ft", "gpt2", "lua")}
    assert cfgs["gpt2"]["d_in"] == 4 * D_MODEL, "GPT-2's MLP is 4 x d_model wide"
    assert cfgs["base"]["d_in"] == cfgs["lua"]["d_in"] == D_MLP
    assert cfgs["ft"]["d_sae"] == D_SAE, "the imported SAE keeps its own width"
    extra = json.loads((results / "sae/ft/featureflow_sae.json").read_text())
    assert "imported" in json.dumps(extra)
    metrics = json.loads((results / "sae/ft/metrics.json").read_text())
    assert metrics["d_sae"] == D_SAE and 0 < metrics["l0"] <= D_SAE, "quality measured on this run's data"
    table = (results / "sae/metrics.tsv").read_text()
    assert all(m in table for m in ("base", "ft", "gpt2", "lua"))


def test_pretrained_config_errors_are_one_line(tmp_path):
    base = {"corpora": {"text": {"files": ["text.txt"]}}}
    (tmp_path / "text.txt").write_text("hello world\n")
    (tmp_path / "folder").mkdir()
    cases = {
        "models.m.train_on": {"m": {"pretrained": "owner/name", "train_on": ["text"], "data": ["text"]}},
        "models.m.pretrained": {"m": {"pretrained": "./missing-folder", "data": ["text"]}},
        "models.m.revision": {"m": {"pretrained": "folder", "revision": "main", "data": ["text"]}},
        "models.m.data": {"m": {"pretrained": "owner/name", "data": ["nope"]}},
        "models.m'": {"m": {"pretrained": "owner/name"}},
        "models.c.parent": {"m": {"pretrained": "owner/name", "data": ["text"]}, "c": {"parent": ["m", "m"], "pretrained": "o/c"}},
        "models.f.parent": {"m": {"pretrained": "owner/name", "data": ["text"]}, "f": {"parent": ["m"], "train_on": ["text"]}},
        "controls.sae_seed.models": {"m": {"pretrained": "owner/name", "data": ["text"], "sae": {"pretrained": "o/sae"}}},
    }
    for key, models in cases.items():
        controls = {"sae_seed": {"models": ["m"]}} if key.startswith("controls") else {}
        with pytest.raises(ConfigError) as err:
            load_plan({**base, "models": models, "controls": controls}, SCHEMA, tmp_path)
        assert key in str(err.value) and "\n" not in str(err.value), (key, str(err.value))


def test_the_default_sae_ceiling_skips_imported_saes(tmp_path):
    (tmp_path / "text.txt").write_text("hello world\n")
    models = {"m": {"pretrained": "owner/name", "data": ["text"], "sae": {"pretrained": "o/sae"}},
              "c": {"parent": "m", "train_on": ["text"]}}
    plan = load_plan({"corpora": {"text": {"files": ["text.txt"]}}, "models": models, "controls": {"sae_seed": {}}},
                     SCHEMA, tmp_path)
    assert plan.sae_seed_models() == ["c"] and plan.trained_saes() == ["c"]
    assert plan.lineage.roots == ["m"] and plan.lineage.edges[0].name == "m__c"


def test_published_config_lists_its_jobs_without_training_or_downloading(tmp_path):
    run = snakemake_local(tmp_path, "-n", "--configfile", str(REPO / "config" / "paper-published.yaml"), "--replace-workflow-config")
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = {line.split()[0]: int(line.split()[1]) for line in run.stdout.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert jobs.get("fetch_model") == 4 and jobs.get("sae") == 4
    assert "train" not in jobs and "merge" not in jobs and "merge_sweep" not in jobs, "nothing is trained or merged"
    assert not (tmp_path / "results").exists(), "a dry run writes and downloads nothing"


def test_the_fine_tune_starts_from_the_pretrained_base(pretrained_run):
    """`lua` fine-tunes the pretrained Mistral base for a few steps at a small rate: it stays close to
    it, so nearly every base feature persists (from a fresh initialisation almost none would)."""
    root, _ = pretrained_run
    results = root / "results"
    assert json.loads((results / "lm/lua/train_meta.json").read_text())["parent"] == "base"
    with open(results / "flow/counts.csv") as fh:
        rows = {(r["edge"], r["quantity"]): float(r["ours_share"]) for r in csv.DictReader(fh)}
    assert rows[("base__lua", "source features persisting")] > 0.5
    assert rows[("base__gpt2", "source features persisting")] < 0.2, "another family's random weights share little"


def _rerun(root: Path, change, target: str):
    cfg = yaml.safe_load((root / "pretrained.yaml").read_text())
    change(cfg)
    path = root / "changed.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return snakemake_local(root, "--configfile", str(path), "--replace-workflow-config", target)


def test_bad_pretrained_input_stops_its_job_with_one_line(pretrained_run, tmp_path):
    """An unknown hook, an SAE of another width and a second tokenizer each stop the job that meets
    them, with one line naming the model (run in a copy: a failed job's outputs are removed)."""
    source, _ = pretrained_run
    root = tmp_path / "copy"
    shutil.copytree(source, root, symlinks=True)
    from featureflow.data.tokenizer import train_bpe

    other_tok = train_bpe(["a few words of another corpus entirely"] * 50, vocab_size=300, min_frequency=1)
    save(gpt2_model(len(other_tok), seed=4), other_tok, root / "models" / "other")
    saelens_folder(root / "saes" / "narrow" / "sae", D_MODEL, "blocks.0.mlp.hook_post", seed=5)
    cases = [
        (lambda c: c["sae"].update(hook="blocks.3.mlp.hook_post"), "results/sae/base/cfg.json",
         "error: model 'base' has no hook 'blocks.3.mlp.hook_post'"),
        (lambda c: c["models"]["ft"].update(sae={"pretrained": "saes/narrow", "path": "sae"}), "results/sae/ft/cfg.json",
         "models.ft.sae.pretrained"),
        (lambda c: c["models"].update(other={"pretrained": "models/other", "parent": "base"}),
         "results/data/tokenizer/tokenizer_meta.json", "pretrained models 'base' and 'other' have different tokenizers"),
    ]
    said = []
    for change, target, expected in cases:
        run = _rerun(root, change, target)
        assert run.returncode != 0
        lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
        assert len(set(lines)) == 1 and expected in lines[0], (expected, run.stderr[-2000:])
        said.append(lines[0])
    assert "d_in 32" in said[1], "the narrow SAE's width is named"
