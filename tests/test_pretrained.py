"""Bring your own lineage: pretrained checkpoints shaped like real ones (tests/real_shapes.py: one per
supported family, several layers, grouped-query attention, tied embeddings, 1k-32k positions, 32k-50k
vocabularies; local folders and a hub snapshot read offline), an imported SAELens SAE, a fine-tune made
here and a merge, through the workflow to the report with the default evaluation settings."""

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from featureflow.config import ConfigError
from featureflow.context import DEFAULT_PRETRAINED_CONTEXT
from featureflow.plan import load_plan
from helpers import REPO, SCHEMA, snakemake_local
from real_shapes import D_MLP, D_MODEL, HOOK, family_config, family_model

HUB_ID = "featureflow-test/tiny-ft"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
D_SAE = 256
OTHER_FAMILIES = ("gpt2", "gpt_neox", "qwen2", "mistral")  # placed after the Llama base


def tiny_tokenizer(texts: list[str]):
    from featureflow.data.tokenizer import train_bpe

    return train_bpe(texts, vocab_size=400, min_frequency=2)


def gpt2_model(vocab: int, seed: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=D_MODEL, n_layer=4, n_head=6, n_positions=1024))


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
    """A lineage of a pretrained Llama-family base (local folder, 8192 positions), its 'fine-tune' (a hub id
    read from a cache snapshot, with an imported SAE), one checkpoint of every other family placed after
    the base, a model we fine-tune from the base, and a merge of that fine-tune with the hub one. No
    `lm.context_size`, `lm.eval_tokens` or `lm.architecture`: the lineage's context is the default."""
    micro = yaml.safe_load((REPO / "config" / "micro.yaml").read_text())
    return {
        "seed": 0, "threshold": 0.5, "data_cache": str(root / "cache"), "figures": {"png": False},  # HTML figures only
        # a 1024-token context needs at least 1024 validation tokens per corpus (Lua: ~6 bytes each with this 400-token BPE)
        "corpora": {c: micro["corpora"][c] | {"max_bytes": 40000, "validation_fraction": 0.3} for c in ("python", "lua")},
        "sae": {"hook": HOOK, "expansion_factor": 2, "normalize": "unit_rms", "tokens": 4800, "batch_blocks": 16, "lr": 3.0e-3,
                "l1_coefficient": 5.0e-3, "buffer_tokens": 2400, "eval_tokens": 2048, "checkpoint_every": 10, "log_every": 5},
        "models": {
            "base": {"pretrained": "models/base", "data": ["python"]},
            "ft": {"pretrained": HUB_ID, "revision": "main", "parent": "base", "data": ["python"],
                   "sae": {"pretrained": "saes/release", "path": HOOK}},
            **{f: {"pretrained": f"models/{f}", "parent": "base"} for f in OTHER_FAMILIES},
            "lua": {"parent": "base", "train_on": ["lua"]},
            "luaft": {"merge": ["lua", "ft"]},
        },
        "lm": {"finetune": {"tokens": 4096, "batch_size": 2, "lr": 1.0e-3, "warmup_steps": 1},
               "checkpoint_every": 50, "log_every": 1},
        "merge": {"grid_step": 0.25, "refine_step": 0.25, "eval_tokens": 2048},
        "acts": {"tokens": 2400, "context_size": 24},
        "correlation": {"top_k": 2},
    }


def build_checkpoints(root: Path) -> None:
    texts = [(REPO / f"data/demo/{c}/{c}.txt").read_text(encoding="utf-8")[:200000] for c in ("english", "python", "lua")]
    tok = tiny_tokenizer(texts)
    base = family_model("llama", seed=1)
    save(base, tok, root / "models" / "base")
    import torch

    with torch.no_grad():  # a "fine-tune": the base, moved a little
        for p in base.parameters():
            p.add_(0.02 * torch.randn_like(p))
    save(base, tok, root / "staging" / "ft")
    hub_snapshot(root / "cache", HUB_ID, root / "staging" / "ft")
    for seed, family in enumerate(OTHER_FAMILIES, start=2):
        save(family_model(family, seed=seed), tok, root / "models" / family)
    saelens_folder(root / "saes" / "release" / HOOK, D_MLP, HOOK, seed=3)


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
    assert set(fetched) == {"base", "ft", *OTHER_FAMILIES}
    assert fetched["ft"]["on_hub"] and fetched["ft"]["commit"] == COMMIT, "the hub id came from the cache snapshot"
    assert {m: fetched[m]["model_type"] for m in fetched} == {"base": "llama", "ft": "llama", **{f: f for f in OTHER_FAMILIES}}
    assert json.loads((results / "data/tokenizer/tokenizer_meta.json").read_text())["kind"] == "pretrained"
    with open(results / "flow/counts.csv") as fh:
        edges = {r["edge"] for r in csv.DictReader(fh)}
    assert {"base__ft", "base__lua", "lua__luaft", "ft__luaft", *(f"base__{f}" for f in OTHER_FAMILIES)} <= edges


def test_each_model_family_gets_an_sae_of_its_own_width_and_the_imported_one_is_measured(pretrained_run):
    root, _ = pretrained_run
    results = root / "results"
    models = ("base", "ft", "lua", "luaft", *OTHER_FAMILIES)
    cfgs = {m: json.loads((results / f"sae/{m}/cfg.json").read_text()) for m in models}
    assert cfgs["gpt2"]["d_in"] == 4 * D_MODEL, "GPT-2's MLP is 4 x d_model wide"
    assert {cfgs[m]["d_in"] for m in ("base", "lua", "luaft", "gpt_neox", "qwen2", "mistral")} == {D_MLP}
    hooks = {m: c.get("hook_name") or c["metadata"]["hook_name"] for m, c in cfgs.items()}  # SAELens 6 keeps it in metadata
    assert set(hooks.values()) == {HOOK}, "the hook sits in a middle layer of every family"
    assert cfgs["ft"]["d_sae"] == D_SAE, "the imported SAE keeps its own width"
    extra = json.loads((results / "sae/ft/featureflow_sae.json").read_text())
    assert "imported" in json.dumps(extra)
    metrics = json.loads((results / "sae/ft/metrics.json").read_text())
    assert metrics["d_sae"] == D_SAE and 0 < metrics["l0"] <= D_SAE, "quality measured on this run's data"
    table = (results / "sae/metrics.tsv").read_text()
    assert all(m in table for m in models)


def test_the_lineage_context_is_one_default_block_for_every_job_that_cuts_blocks(pretrained_run):
    """The base allows 8192 positions, GPT-2 1024: fine-tuning, evaluation, the merge sweep and SAE evaluation
    all cut blocks of min(1024, every model's positions) = 1024 tokens, with no context setting in the config."""
    root, _ = pretrained_run
    results = root / "results"
    block = min(DEFAULT_PRETRAINED_CONTEXT, *(family_config(f).max_position_embeddings for f in ("llama", *OTHER_FAMILIES)))
    assert block == 1024
    meta = json.loads((results / "lm/lua/train_meta.json").read_text())
    assert meta["tokens_seen"] == meta["steps"] * 2 * block, "fine-tuned on blocks of the lineage's context"
    for model in ("base", "ft", "lua", "luaft", *OTHER_FAMILIES):
        for corpus, m in json.loads((results / f"lm/{model}/eval.json").read_text()).items():
            assert m["tokens"] > 0 and m["tokens"] % (block - 1) == 0, (model, corpus, m["tokens"])
    sae_eval = json.loads((results / "sae/base/metrics.json").read_text())
    assert sae_eval["tokens"] % block == 0
    log = (results / "logs/lm/evaluate/base.log").read_text()
    assert "vocabulary" in log and "49152" in log and "estimated peak" in log, "the logits' memory is stated"


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
    saelens_folder(root / "saes" / "narrow" / "sae", D_MODEL, HOOK, seed=5)
    cases = [
        (lambda c: c["sae"].update(hook="blocks.4.mlp.hook_post"), "results/sae/base/cfg.json",
         "error: model 'base' has no hook 'blocks.4.mlp.hook_post' (4 layers"),
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
    assert f"d_in {D_MODEL}" in said[1], "the narrow SAE's width is named"
