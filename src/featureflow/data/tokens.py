"""Token stage: encode split text into flat integer arrays, and mix corpora for a model.

Outputs::

    results/data/tokens/{corpus}/{split}.npy    uint16/uint32, documents each followed by the end-of-text id
    results/data/tokens/{corpus}/{split}.json   token/document/char counts
    results/data/mixtures/{model}/{split}.npy   a model's training mixture of several corpora
    results/data/mixtures/{model}/{split}.json  tokens taken from each corpus
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from featureflow.data.corpus import read_documents
from featureflow.data.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def encode_documents(docs: list[str], tokenizer: Any, eot_id: int, dtype: np.dtype, batch_size: int = 512) -> np.ndarray:
    """Encode documents into one flat array, each document followed by `eot_id`."""
    pieces: list[np.ndarray] = []
    eot = np.array([eot_id], dtype=dtype)
    for start in tqdm(range(0, len(docs), batch_size), desc="encode", unit="batch", mininterval=5):
        for enc in tokenizer.encode_batch(docs[start : start + batch_size], add_special_tokens=False):
            pieces.append(np.asarray(enc.ids, dtype=dtype))
            pieces.append(eot)
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)


def tokenize_split(text_path: str | Path, tok_dir: str | Path, out_npy: str | Path, out_json: str | Path) -> dict[str, Any]:
    """Encode one split text file into `out_npy` and write its counts to `out_json`."""
    tokenizer, meta = load_tokenizer(tok_dir)
    docs = read_documents(text_path)
    ids = encode_documents(docs, tokenizer, meta["eot_id"], token_dtype(meta["vocab_size"]))
    np.save(out_npy, ids)
    n_chars = sum(len(d) for d in docs)
    counts = {
        "tokens": int(ids.size),
        "documents": len(docs),
        "chars": n_chars,
        "chars_per_token": round(n_chars / max(1, ids.size - len(docs)), 4),
        "eot_id": meta["eot_id"],
        "dtype": str(ids.dtype),
        "source": str(text_path),
    }
    Path(out_json).write_text(json.dumps(counts, indent=2) + "\n")
    log.info("%s: %d documents -> %d tokens", text_path, len(docs), ids.size)
    return counts


def cut_at_document(ids: np.ndarray, n_tokens: int, eot_id: int) -> np.ndarray:
    """The longest prefix of `ids` with at most `n_tokens` tokens that ends at a document end."""
    if n_tokens >= ids.size:
        return ids
    ends = np.flatnonzero(ids[:n_tokens] == eot_id)
    return ids[: ends[-1] + 1] if ends.size else ids[:n_tokens]


def mix_tokens(arrays: dict[str, np.ndarray], mode: str, eot_id: int) -> tuple[np.ndarray, dict[str, int]]:
    """Concatenate per-corpus token arrays; `even` first cuts each to the smallest one's size."""
    if mode == "even":
        smallest = min(a.size for a in arrays.values())
        arrays = {name: cut_at_document(a, smallest, eot_id) for name, a in arrays.items()}
    elif mode != "concat":
        raise ValueError(f"mix mode {mode!r} is not one of: even, concat")
    mixed = np.concatenate(list(arrays.values()))
    return mixed, {name: int(a.size) for name, a in arrays.items()}


def build_mixture(token_files: dict[str, str | Path], mode: str, out_npy: str | Path, out_json: str | Path) -> dict[str, Any]:
    """Mix the token files of several corpora (one split) into a model's training array."""
    eot_ids = {json.loads(Path(p).with_suffix(".json").read_text())["eot_id"] for p in token_files.values()}
    if len(eot_ids) != 1:
        raise ValueError(f"token files disagree on the end-of-text id: {sorted(eot_ids)}")
    arrays = {name: np.load(path) for name, path in token_files.items()}
    mixed, taken = mix_tokens(arrays, mode, eot_ids.pop())
    np.save(out_npy, mixed)
    summary = {"mode": mode, "tokens": int(mixed.size), "tokens_per_corpus": taken,
               "available_per_corpus": {n: int(a.size) for n, a in arrays.items()}}
    Path(out_json).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def summarise_counts(count_files: list[tuple[str, str, str | Path]], out_tsv: str | Path) -> list[dict[str, Any]]:
    """Gather the (corpus, split, counts json) files of `tokenize_split` into one table."""
    rows = []
    for corpus, split, path in count_files:
        c = json.loads(Path(path).read_text())
        rows.append({"corpus": corpus, "split": split, "documents": c["documents"],
                     "chars": c["chars"], "tokens": c["tokens"], "chars_per_token": c["chars_per_token"]})
    header = list(rows[0]) if rows else ["corpus", "split", "documents", "chars", "tokens", "chars_per_token"]
    lines = ["\t".join(header)] + ["\t".join(str(r[k]) for k in header) for r in rows]
    Path(out_tsv).write_text("\n".join(lines) + "\n")
    return rows


def eval_blocks(ids: np.ndarray, block_size: int, max_tokens: int | None) -> np.ndarray:
    """Non-overlapping [n_blocks, block_size] windows from the start of a token array."""
    n = ids.size if max_tokens is None else min(ids.size, max_tokens)
    n_blocks = n // block_size
    if n_blocks == 0:
        raise ValueError(f"{ids.size} validation tokens do not fill one block of {block_size}")
    return np.asarray(ids[: n_blocks * block_size], dtype=np.int64).reshape(n_blocks, block_size)


def blocks_from_files(files: list[str | Path], block_size: int, tokens_per_file: int | None) -> np.ndarray:
    """Evaluation blocks from the start of each token file, `tokens_per_file` from each, stacked."""
    return np.concatenate([eval_blocks(np.load(f, mmap_mode="r"), block_size, tokens_per_file) for f in files])
