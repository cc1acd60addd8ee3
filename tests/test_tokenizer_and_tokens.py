"""Tokenizer round trips, the offline Mistral tokenizer, token files and even mixtures."""

import json

import numpy as np
import pytest

from featureflow.data.tokenizer import build_tokenizer, load_tokenizer
from featureflow.data.tokens import NpyWriter, build_mixture, cut_at_document, encode_batch, last_document_end, mix_tokens, tokenize_split
from featureflow.settings import TokenizerSettings
from helpers import DOC_SEP, settings

TRICKY = [
    "def f(x):\n\treturn x ** 2  # café ünïcode → ✓\n",
    "local t = {}\nfor i, v in ipairs(t) do\n    print(i, v)\nend\n",
    "Once upon a time,   there were three spaces and a tab\there.\n\n\n",
    "emoji 🙂 and CJK 漢字 and a lone \\ backslash",
]


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bpe")
    text = root / "train.txt"
    docs = [f"def f{i}(x):\n    return x + {i}\n" for i in range(300)] + [f"The cat number {i} sat on the mat." for i in range(300)]
    text.write_text(DOC_SEP.join(docs))
    build_tokenizer(settings(TokenizerSettings, vocab_size=400), [text], root / "tok")
    return root


def test_bpe_has_requested_vocab_and_round_trips_any_text(bpe_dir):
    tok, meta = load_tokenizer(bpe_dir / "tok")
    assert meta["vocab_size"] == tok.get_vocab_size() == 400
    assert tok.id_to_token(meta["eot_id"]) == "<|endoftext|>"
    for text in TRICKY:
        assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text


def test_bpe_training_is_deterministic(bpe_dir, tmp_path):
    build_tokenizer(settings(TokenizerSettings, vocab_size=400), [bpe_dir / "train.txt"], tmp_path / "again")
    assert (tmp_path / "again/tokenizer.json").read_bytes() == (bpe_dir / "tok/tokenizer.json").read_bytes()


def test_transformers_wrapper_encodes_like_the_fast_tokenizer(bpe_dir):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(bpe_dir / "tok"))
    tok, _ = load_tokenizer(bpe_dir / "tok")
    for text in TRICKY:
        assert hf(text, add_special_tokens=False)["input_ids"] == tok.encode(text, add_special_tokens=False).ids


def test_mistral_tokenizer_offline_matches_reference_ids(tmp_path):
    meta = build_tokenizer(settings(TokenizerSettings, kind="mistral"), [], tmp_path / "mistral")
    assert (meta["vocab_size"], meta["eot_token"], meta["eot_id"]) == (32000, "</s>", 2)
    tok, _ = load_tokenizer(tmp_path / "mistral")
    ids = tok.encode("def f(x): return x", add_special_tokens=False).ids
    assert ids == [801, 285, 28732, 28744, 1329, 604, 1318]  # pieces ▁def ▁f ( x ): ▁return ▁x
    assert tok.decode(ids) == "def f(x): return x"


def test_token_file_has_one_eot_after_each_document(bpe_dir, tmp_path):
    docs = ["alpha beta", "def g():\n    pass", "gamma"]
    (tmp_path / "split.txt").write_text(DOC_SEP.join(docs))
    counts = tokenize_split(tmp_path / "split.txt", bpe_dir / "tok", tmp_path / "ids.npy", tmp_path / "ids.json")
    ids = np.load(tmp_path / "ids.npy")
    tok, meta = load_tokenizer(bpe_dir / "tok")
    assert ids.dtype == np.uint16 and counts["tokens"] == ids.size
    ends = np.flatnonzero(ids == meta["eot_id"])
    assert ends.size == len(docs) and ends[-1] == ids.size - 1
    pieces = np.split(ids, ends + 1)[:-1]
    assert [tok.decode(p[:-1].tolist()) for p in pieces] == docs
    assert json.loads((tmp_path / "ids.json").read_text())["documents"] == 3


def test_cut_at_document_never_splits_a_document():
    ids = np.array([5, 6, 0, 7, 0, 8, 9, 9, 0])
    assert cut_at_document(ids, 6, 0).tolist() == [5, 6, 0, 7, 0]
    assert cut_at_document(ids, 100, 0).tolist() == ids.tolist()


def test_even_mixture_takes_about_equal_tokens_from_each_corpus():
    rng = np.random.default_rng(0)

    def stream(n_docs):
        return np.concatenate([np.append(rng.integers(1, 50, rng.integers(5, 30)), 0) for _ in range(n_docs)])

    arrays = {"english": stream(400), "python": stream(100)}
    parts = mix_tokens(arrays, "even", eot_id=0)
    taken = {k: v.size for k, v in parts.items()}
    assert taken["python"] == arrays["python"].size
    assert arrays["python"].size - 30 <= taken["english"] <= arrays["python"].size
    assert all(p[-1] == 0 for p in parts.values())
    assert {k: v.size for k, v in mix_tokens(arrays, "concat", eot_id=0).items()} == {k: v.size for k, v in arrays.items()}
    with pytest.raises(ValueError, match="mix mode 'random'"):
        mix_tokens(arrays, "random", 0)


def test_build_mixture_refuses_files_from_different_tokenizers(tmp_path):
    for name, eot in (("a", 0), ("b", 2)):
        np.save(tmp_path / f"{name}.npy", np.array([1, eot], dtype=np.uint16))
        (tmp_path / f"{name}.json").write_text(json.dumps({"eot_id": eot}))
    with pytest.raises(ValueError, match=r"disagree on the end-of-text id: \[0, 2\]"):
        build_mixture({"a": tmp_path / "a.npy", "b": tmp_path / "b.npy"}, "even", tmp_path / "m.npy", tmp_path / "m.json")


def test_encode_batch_of_nothing_is_empty(bpe_dir):
    tok, meta = load_tokenizer(bpe_dir / "tok")
    assert encode_batch([], tok, meta["eot_id"], np.dtype(np.uint16)).size == 0


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
@pytest.mark.parametrize("n", [0, 1, 1000, 123457])
def test_npy_writer_writes_the_bytes_of_np_save(tmp_path, dtype, n):
    ids = np.random.default_rng(n).integers(0, 60000, n).astype(dtype)
    np.save(tmp_path / "ref.npy", ids)
    writer = NpyWriter(tmp_path / "out.npy", np.dtype(dtype))
    for start in range(0, n, 997):
        writer.write(ids[start : start + 997])
    assert writer.close() == n
    assert (tmp_path / "out.npy").read_bytes() == (tmp_path / "ref.npy").read_bytes()
    assert not list(tmp_path.glob("*.part"))


def test_document_end_search_agrees_with_a_naive_scan_across_chunks():
    ids = np.random.default_rng(1).integers(0, 5, 5000).astype(np.uint16)
    for n in (0, 1, 7, 100, 2500, 4999, 5000):
        naive = np.flatnonzero(ids[:n] == 0)
        expect = int(naive[-1]) + 1 if naive.size else 0
        assert last_document_end(ids, n, 0, chunk=64) == expect


def test_mixture_from_memory_maps_equals_the_concatenation(tmp_path):
    rng = np.random.default_rng(2)
    files = {}
    for name, n_docs in (("a", 300), ("b", 80)):
        ids = np.concatenate([np.append(rng.integers(1, 50, rng.integers(5, 30)), 0) for _ in range(n_docs)])
        np.save(tmp_path / f"{name}.npy", ids.astype(np.uint16))
        (tmp_path / f"{name}.json").write_text(json.dumps({"eot_id": 0}))
        files[name] = tmp_path / f"{name}.npy"
    summary = build_mixture(files, "even", tmp_path / "m.npy", tmp_path / "m.json", chunk=100)
    arrays = {k: np.load(v) for k, v in files.items()}
    expect = np.concatenate([cut_at_document(a, arrays["b"].size, 0) for a in arrays.values()])
    assert np.array_equal(np.load(tmp_path / "m.npy"), expect)
    assert summary["tokens"] == expect.size
