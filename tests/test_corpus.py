"""Corpus stage: document splitting, deterministic train/validation split, encodings, datasets path."""

import json

import pytest

from featureflow.config import CorpusError, validate_config
from featureflow.data.corpus import load_documents, prepare_corpus, read_documents, split_documents
from featureflow.settings import CorpusSettings, from_block
from helpers import DOC_SEP, SCHEMA, lineage_config, write_corpora


def corpus_settings(**spec):
    """CorpusSettings of a corpus spec, with the schema's defaults filled in."""
    cfg = lineage_config()
    cfg["corpora"]["lua"] = spec
    return from_block(CorpusSettings, validate_config(cfg, SCHEMA)["corpora"]["lua"])


def spec_for(tmp_path, name="lua", **extra):
    write_corpora(tmp_path)
    return corpus_settings(files=[str(tmp_path / f"data/{name}.txt")], **extra)


def prepare(spec, seed, out_dir):
    """The corpus rule's function with its outputs in `out_dir`."""
    return prepare_corpus("lua", {s: out_dir / f"{s}.txt" for s in ("train", "validation")}, out_dir / "split.json", spec, seed)


def test_split_documents_on_separator_lines_only():
    text = "a\nb\n\x1e\nc \x1e inline\n\x1e\r\nd"
    assert split_documents(text, "\x1e") == ["a\nb", "c \x1e inline", "d"]
    assert split_documents(text, "") == [text]


def test_split_is_a_partition_and_deterministic(tmp_path):
    spec = spec_for(tmp_path, validation_fraction=0.2)
    a = prepare(spec, 0, tmp_path / "a")
    prepare(spec, 0, tmp_path / "b")
    c = prepare(spec, 1, tmp_path / "c")
    train, val = read_documents(tmp_path / "a/train.txt"), read_documents(tmp_path / "a/validation.txt")
    assert (a["train"]["documents"], a["validation"]["documents"]) == (24, 6)
    assert not set(train) & set(val)
    assert sorted(train + val) == sorted(load_documents("lua", spec, seed=0))
    for split in ("train", "validation"):
        assert (tmp_path / f"a/{split}.txt").read_bytes() == (tmp_path / f"b/{split}.txt").read_bytes()
    assert read_documents(tmp_path / "c/validation.txt") != val, "another seed holds out other documents"
    assert c["validation"]["documents"] == 6


def test_max_bytes_and_max_documents_keep_whole_documents(tmp_path):
    spec = spec_for(tmp_path, max_documents=10)
    summary = prepare(spec, 0, tmp_path / "a")
    assert summary["train"]["documents"] + summary["validation"]["documents"] == 10
    spec = spec_for(tmp_path, max_bytes=2000)
    summary = prepare(spec, 0, tmp_path / "b")
    docs = read_documents(tmp_path / "b/train.txt") + read_documents(tmp_path / "b/validation.txt")
    sizes = sum(len(d.encode()) for d in docs)
    assert 2000 <= sizes < 2000 + max(len(d.encode()) for d in docs)


def test_non_utf8_bytes_name_the_file_and_offset(tmp_path):
    spec = spec_for(tmp_path)
    bad = tmp_path / "data/lua.txt"
    bad.write_bytes(b"local x = 1\n\x1e\nprint('caf\xe9')\n")
    with pytest.raises(CorpusError, match=r"lua.txt: not valid UTF-8 \(byte 0xe9 at offset 24\)"):
        prepare(spec, 0, tmp_path / "out")
    assert not (tmp_path / "out/train.txt").exists()


def test_whitespace_only_file_is_rejected(tmp_path):
    spec = spec_for(tmp_path)
    (tmp_path / "data/lua.txt").write_text("\n\n  \n")
    with pytest.raises(CorpusError, match="lua.txt: file holds no text"):
        prepare(spec, 0, tmp_path / "out")


def test_too_few_documents_is_an_error(tmp_path):
    spec = spec_for(tmp_path)
    (tmp_path / "data/lua.txt").write_text("just one document")
    with pytest.raises(CorpusError, match="corpus 'lua': only 1 document"):
        prepare(spec, 0, tmp_path / "out")


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_datasets_spec_reads_local_json_and_parquet(tmp_path, fmt):
    import pandas as pd

    rows = pd.DataFrame({"content": [f"local x{i} = {i}\n" * (i + 1) for i in range(20)], "size": range(20)})
    path = tmp_path / f"part.{fmt}"
    rows.to_json(path, orient="records", lines=True) if fmt == "json" else rows.to_parquet(path)
    spec = corpus_settings(dataset={"path": fmt, "data_files": [str(path)], "text_field": "content"})
    summary = prepare(spec, 0, tmp_path / "out")
    docs = read_documents(tmp_path / "out/train.txt") + read_documents(tmp_path / "out/validation.txt")
    assert sorted(docs) == sorted(t.strip("\n") for t in rows["content"])
    assert json.loads((tmp_path / "out/split.json").read_text())["documents_read"] == 20
    assert summary["validation"]["documents"] == 1

    spec.dataset["text_field"] = "text"
    with pytest.raises(CorpusError, match="no column 'text' \\(columns: content, size\\)"):
        prepare(spec, 0, tmp_path / "out2")


def test_record_separator_inside_dataset_text_cannot_split_documents(tmp_path):
    import pandas as pd

    path = tmp_path / "d.json"
    pd.DataFrame({"text": [f"a\n\x1e\nb{i}" for i in range(4)]}).to_json(path, orient="records", lines=True)
    docs = load_documents("x", corpus_settings(dataset={"path": "json", "data_files": str(path)}), seed=0)
    assert len(docs) == 4 and all("\x1e" not in d for d in docs)
    assert DOC_SEP not in "".join(docs)
