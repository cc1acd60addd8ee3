"""Corpus stage at scale: one streaming pass, hash sampling, a bounded shuffle buffer, caps that stop
reading, and one-line errors for bad data that leave nothing half-written."""

import json
import random

import pytest
from test_corpus import corpus_settings

from featureflow.config import CorpusError
from featureflow.data.corpus import prepare_corpus, read_documents
from featureflow.data.select import sample_value
from featureflow.data.sources import iter_file_documents, split_documents


def jsonl_shards(root, docs, n_shards, field="text"):
    """Write `docs` round-robin into `n_shards` JSONL files; returns their paths."""
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"part-{i:03d}.jsonl" for i in range(n_shards)]
    for i, path in enumerate(paths):
        path.write_text("".join(json.dumps({field: d, "id": j}) + "\n" for j, d in enumerate(docs) if j % n_shards == i))
    return [str(p) for p in paths]


def make_docs(n, seed=0, words=40):
    rng = random.Random(seed)
    vocab = "alpha beta gamma delta local function end return print value table".split()
    return [f"doc {i}: " + " ".join(rng.choice(vocab) for _ in range(words)) for i in range(n)]


def run(tmp_path, out, **spec):
    settings = corpus_settings(**spec)
    out = tmp_path / out
    summary = prepare_corpus("lua", {s: out / f"{s}.txt" for s in ("train", "validation")}, out / "split.json",
                             settings, 0)
    docs = {s: read_documents(out / f"{s}.txt") for s in ("train", "validation")}
    return summary, docs


def test_file_reader_streams_the_same_documents_as_splitting_the_whole_text(tmp_path):
    rng = random.Random(3)
    pieces = ["a", "b c", "", "\x1e", "\x1e\r", " \x1e", "x\r", "été ü", "\x1e\x1e"]
    for trial in range(200):
        text = "\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) + rng.choice(["", "\n", "\n\n"])
        path = tmp_path / f"t{trial}.txt"
        path.write_bytes(text.encode("utf-8"))
        assert list(iter_file_documents(path, "\x1e")) == split_documents(text, "\x1e"), repr(text)


def test_fraction_keeps_the_same_documents_whatever_the_sharding(tmp_path):
    docs = make_docs(400)
    kept = []
    for n_shards in (1, 3, 7):
        files = jsonl_shards(tmp_path / f"s{n_shards}", docs, n_shards)
        summary, out = run(tmp_path, f"o{n_shards}", dataset={"path": "json", "data_files": files}, fraction=0.3,
                           shuffle_buffer_mb=0.002)
        assert summary["selection"]["buffer"] == "streaming"
        kept.append(sorted(out["train"] + out["validation"]))
    assert kept[0] == kept[1] == kept[2]
    expect = sorted(d for d in docs if sample_value(0, "lua", d) < 0.3)
    assert kept[0] == expect
    assert 90 <= len(expect) <= 150, "about 30% of 400"


def test_streaming_selection_is_deterministic_partitions_and_holds_out_the_share(tmp_path):
    docs = make_docs(600)
    files = jsonl_shards(tmp_path / "s", docs, 4)
    spec = dict(dataset={"path": "json", "data_files": files}, shuffle_buffer_mb=0.003, validation_fraction=0.1)
    a, out_a = run(tmp_path, "a", **spec)
    b, _ = run(tmp_path, "b", **spec)
    assert (tmp_path / "a/train.txt").read_bytes() == (tmp_path / "b/train.txt").read_bytes()
    assert sorted(out_a["train"] + out_a["validation"]) == sorted(docs)
    assert len(out_a["validation"]) == 60
    assert a["selection"] == b["selection"] and a["selection"]["stopped"] == "end of data"
    assert out_a["train"][:50] != [d for d in docs if d in set(out_a["train"])][:50], "the buffer shuffles"


def test_a_cap_stops_reading_and_draws_from_every_shard(tmp_path):
    docs = make_docs(2000)
    files = jsonl_shards(tmp_path / "s", docs, 8)
    summary, out = run(tmp_path, "o", dataset={"path": "json", "data_files": files}, max_tokens=10_000,
                       bytes_per_token=4.0, shuffle_buffer_mb=0.004)
    sel = summary["selection"]
    assert sel["stopped"] == "max_tokens reached"
    kept = out["train"] + out["validation"]
    assert 40_000 <= sel["kept_bytes"] < 40_000 + max(len(d) for d in kept) + 1
    assert sel["read"] < 500, "reading stopped soon after the cap (plus the buffer)"
    # shards are read in a seeded order: other seeds start from other shards (doc j is in shard j % 8)
    first_shards = set()
    for seed in range(4):
        out = tmp_path / f"seed{seed}"
        prepare_corpus("lua", {s: out / f"{s}.txt" for s in ("train", "validation")}, out / "split.json",
                       corpus_settings(dataset={"path": "json", "data_files": files}, max_tokens=2_000,
                                       shuffle_buffer_mb=0.002), seed)
        first_shards |= {int(d.split(":")[0].split()[1]) % 8 for d in read_documents(out / "train.txt")}
    assert len(first_shards) >= 2


def test_code_filters_run_on_the_stream_and_are_counted(tmp_path):
    good = [f"def f{i}(x):\n    return x + {i}\n" for i in range(30)]
    bad = ["x = '" + "a" * 2000 + "'\n", "# auto-generated file, do not edit\nx = 1\n", "#-*" * 50 + "\n" * 3]
    files = jsonl_shards(tmp_path / "s", good + good[:5] + bad, 2)
    summary, out = run(tmp_path, "o", dataset={"path": "json", "data_files": files}, filter="code",
                       shuffle_buffer_mb=0.0005)
    filtered = summary["selection"]["filtered"]
    assert filtered["duplicate"] == 5 and filtered["max_line_length"] == 1 and filtered["auto_generated"] == 1
    assert sorted(out["train"] + out["validation"]) == sorted(g.strip("\n") for g in good)


@pytest.mark.parametrize("spec, message", [
    ({"fraction": 0.001}, r"corpus 'lua': corpora.lua.fraction=0.001 keeps 0 of 30 documents"),
    ({"max_bytes": 10}, r"corpus 'lua': corpora.lua.max_bytes=10 keeps only 1 document\(s\)"),
    ({"max_tokens": 2, "bytes_per_token": 3.0}, r"corpora.lua.max_tokens=2 keeps only 1 document"),
])
def test_selections_that_leave_no_validation_name_the_key(tmp_path, spec, message):
    from helpers import write_corpora

    write_corpora(tmp_path)
    with pytest.raises(CorpusError, match=message):
        run(tmp_path, "o", files=[str(tmp_path / "data/lua.txt")], **spec)
    assert not list((tmp_path / "o").glob("*.txt")) and not list((tmp_path / "o").glob("*.part"))


def test_bad_rows_and_shards_stop_with_one_line_and_leave_nothing(tmp_path):
    docs = make_docs(50)
    files = jsonl_shards(tmp_path / "s", docs, 2)
    cases = {
        "null": ('{"text": null}\n', r"dataset 'json': row \d+ has null text in column 'text'"),
        "missing": ('{"body": "x"}\n', r"dataset 'json': its files do not share one set of columns \(CastError.*every row needs column 'text'"),
        "broken": ('{"text": "ok"}\n{"text": broken\n', r"corpus 'lua': dataset 'json' could not be read \(ArrowInvalid"),
    }
    for name, (extra, message) in cases.items():
        bad = tmp_path / f"bad_{name}.jsonl"
        bad.write_text(extra)
        with pytest.raises(CorpusError, match=message):
            run(tmp_path, f"o_{name}", dataset={"path": "json", "data_files": files + [str(bad)]})
        assert not list((tmp_path / f"o_{name}").iterdir()), f"{name}: nothing half-written"
    (tmp_path / "lists.jsonl").write_text('{"text": ["a", "b"]}\n')
    with pytest.raises(CorpusError, match=r"dataset 'json': row 0 has list text in column 'text'"):
        run(tmp_path, "o_list", dataset={"path": "json", "data_files": [str(tmp_path / "lists.jsonl")]})
    (tmp_path / "bad.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(CorpusError, match=r"dataset 'parquet' could not be read \(ArrowInvalid: Parquet magic"):
        run(tmp_path, "o_pq", dataset={"path": "parquet", "data_files": [str(tmp_path / "bad.parquet")]})


def test_an_unreachable_hub_dataset_offline_is_one_line(tmp_path, monkeypatch):
    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    # the libraries read these once, at import (a workflow job starts with them set)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    with pytest.raises(CorpusError, match=r"corpus 'lua': dataset 'nosuch-org/nosuch-data' cannot be read: "
                                          r"the hub is offline here"):
        run(tmp_path, "o", dataset={"path": "nosuch-org/nosuch-data"})
    assert not list((tmp_path / "o").iterdir())


def test_hub_jobs_go_online_only_if_the_user_had_not_turned_the_hub_off(tmp_path, monkeypatch):
    from featureflow.data.sources import hub_access, hub_offline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as common.smk sets it for every job
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("FEATUREFLOW_USER_HF_HUB_OFFLINE", "")
    monkeypatch.setenv("FEATUREFLOW_USER_HF_DATASETS_OFFLINE", "")
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    with hub_access(tmp_path / "cache", online=True):
        assert not hub_offline()
        import os

        assert os.environ["HF_DATASETS_CACHE"] == str(tmp_path / "cache/datasets")
    assert hub_offline() and "HF_DATASETS_CACHE" not in __import__("os").environ
    monkeypatch.setenv("FEATUREFLOW_USER_HF_HUB_OFFLINE", "1")  # the user ran snakemake offline: stay offline
    with hub_access(None, online=True):
        assert hub_offline()


def test_hub_corpora_are_fetched_by_a_local_rule(tmp_path):
    """paper.yaml's corpora come from the hub: fetch_corpus jobs, run where snakemake runs; local ones: corpus."""
    import re

    from test_profiles import paper_plan

    from helpers import REPO

    plan = paper_plan()
    assert plan.hub_corpora() == ["english", "python", "lua", "stories"] and plan.file_corpora() == []
    data_rules = (REPO / "workflow/rules/data.smk").read_text()
    local = re.search(r"^localrules:\n((?:\s+\w+,\n)+)", data_rules, flags=re.M).group(1)
    assert "fetch_corpus" in local.split() or "fetch_corpus," in local


def test_a_corpus_with_both_files_and_dataset_is_refused_before_any_job(tmp_path):
    from featureflow.config import SCHEMA_PATH, ConfigError
    from featureflow.plan import load_plan
    from helpers import lineage_config, write_corpora

    write_corpora(tmp_path)
    cfg = lineage_config()
    cfg["corpora"]["lua"]["dataset"] = {"path": "json", "data_files": "x.jsonl"}
    with pytest.raises(ConfigError, match=r"config key 'corpora.lua' needs exactly one of 'files' or 'dataset'"):
        load_plan(cfg, SCHEMA_PATH, workdir=tmp_path)
