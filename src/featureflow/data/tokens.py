"""Token stage: encode split text into flat integer arrays, and mix corpora for a model.

Outputs::

    results/data/tokens/{corpus}/{split}.npy    uint16/uint32, documents each followed by the end-of-text id
    results/data/tokens/{corpus}/{split}.json   token/document/char counts
    results/data/mixtures/{model}/{split}.npy   a model's training mixture of several corpora
    results/data/mixtures/{model}/{split}.json  tokens taken from each corpus
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from featureflow.config import ConfigError
from featureflow.data.sources import iter_text_documents
from featureflow.data.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


class NpyWriter:
    """A 1-D .npy file written piece by piece (the same bytes as `np.save` of the whole array).

    The header is written for an empty array first and rewritten for the final length at `close`
    (both are 128 bytes for any length a corpus can have; otherwise the file is rewritten once).
    """

    def __init__(self, path: str | Path, dtype: np.dtype) -> None:
        self.path, self.dtype, self.size = Path(path), np.dtype(dtype), 0
        self.tmp = self.path.with_name(self.path.name + ".part")
        self.file = open(self.tmp, "wb")
        self.header_len = len(self._header(0))
        self.file.write(self._header(0))

    def _header(self, n: int) -> bytes:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            buf, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (n,)})
        return buf.getvalue()

    def write(self, ids: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(ids, dtype=self.dtype).tobytes())
        self.size += len(ids)

    def close(self) -> int:
        """Finish the file (header for the final length, renamed into place); returns the length."""
        header = self._header(self.size)
        if len(header) == self.header_len:
            self.file.seek(0)
            self.file.write(header)
            self.file.close()
        else:  # the length needs a longer header: move the data behind it once
            self.file.close()
            with open(self.tmp, "rb") as src, open(self.tmp.with_suffix(".tmp2"), "wb") as dst:
                src.seek(self.header_len)
                dst.write(header)
                shutil.copyfileobj(src, dst, 1 << 24)
            os.replace(self.tmp.with_suffix(".tmp2"), self.tmp)
        os.replace(self.tmp, self.path)
        return self.size

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


def batches_by_size(docs: Iterable[str], max_chars: int = 4 << 20, max_docs: int = 4096) -> Iterator[list[str]]:
    """Consecutive documents in lists of at most `max_docs` documents or about `max_chars` characters."""
    batch: list[str] = []
    size = 0
    for doc in docs:
        batch.append(doc)
        size += len(doc)
        if size >= max_chars or len(batch) >= max_docs:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def encode_batch(docs: list[str], tokenizer: Any, eot_id: int, dtype: np.dtype) -> np.ndarray:
    """Encode documents into one flat array, each document followed by `eot_id` (the tokenizer's threads)."""
    pieces: list[np.ndarray] = []
    eot = np.array([eot_id], dtype=dtype)
    for enc in tokenizer.encode_batch_fast(docs, add_special_tokens=False):  # no offsets: ~25% less CPU
        pieces.append(np.asarray(enc.ids, dtype=dtype))
        pieces.append(eot)
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)


def tokenize_split(text_path: str | Path, tok_dir: str | Path, out_npy: str | Path, out_json: str | Path,
                   threads: int | None = None) -> dict[str, Any]:
    """Encode one split text file into `out_npy` batch by batch and write its counts to `out_json`.

    Memory holds one batch of documents and its token ids, whatever the size of the split.
    """
    if threads:  # the tokenizers library's thread pool reads this once, at its first batch
        os.environ["RAYON_NUM_THREADS"] = str(threads)
    tokenizer, meta = load_tokenizer(tok_dir)
    writer = NpyWriter(out_npy, token_dtype(meta["vocab_size"]))
    n_docs = n_chars = 0
    try:
        with tqdm(desc="encode", unit="B", unit_scale=True, mininterval=10,
                  total=Path(text_path).stat().st_size) as bar:
            for batch in batches_by_size(iter_text_documents(text_path)):
                writer.write(encode_batch(batch, tokenizer, meta["eot_id"], writer.dtype))
                n_docs += len(batch)
                chars = sum(len(d) for d in batch)
                n_chars += chars
                bar.update(chars)
    except BaseException:
        writer.abort()
        raise
    n_tokens = writer.close()
    counts = {
        "tokens": n_tokens,
        "documents": n_docs,
        "chars": n_chars,
        "chars_per_token": round(n_chars / max(1, n_tokens - n_docs), 4),
        "eot_id": meta["eot_id"],
        "dtype": str(writer.dtype),
        "source": str(text_path),
    }
    Path(out_json).write_text(json.dumps(counts, indent=2) + "\n")
    log.info("%s: %d documents -> %d tokens", text_path, n_docs, n_tokens)
    return counts


def last_document_end(ids: np.ndarray, n_tokens: int, eot_id: int, chunk: int = 1 << 22) -> int:
    """Length of the longest prefix of `ids[:n_tokens]` that ends at a document end (0 if none);
    searched backwards in chunks, so a memory-mapped array is never copied whole."""
    stop = min(n_tokens, ids.size)
    while stop > 0:
        start = max(0, stop - chunk)
        ends = np.flatnonzero(ids[start:stop] == eot_id)
        if ends.size:
            return start + int(ends[-1]) + 1
        stop = start
    return 0


def cut_at_document(ids: np.ndarray, n_tokens: int, eot_id: int) -> np.ndarray:
    """The longest prefix of `ids` with at most `n_tokens` tokens that ends at a document end."""
    if n_tokens >= ids.size:
        return ids
    end = last_document_end(ids, n_tokens, eot_id)
    return ids[:end] if end else ids[:n_tokens]


def mix_tokens(arrays: dict[str, np.ndarray], mode: str, eot_id: int) -> dict[str, np.ndarray]:
    """The part of each corpus's tokens that goes into the mixture; `even` cuts each to the smallest one's size."""
    if mode == "even":
        smallest = min(a.size for a in arrays.values())
        return {name: cut_at_document(a, smallest, eot_id) for name, a in arrays.items()}
    if mode != "concat":
        raise ValueError(f"mix mode {mode!r} is not one of: even, concat")
    return arrays


def build_mixture(token_files: dict[str, str | Path], mode: str, out_npy: str | Path, out_json: str | Path,
                  chunk: int = 1 << 24) -> dict[str, Any]:
    """Mix the token files of several corpora (one split) into a model's training array, from memory maps."""
    eot_ids = {json.loads(Path(p).with_suffix(".json").read_text())["eot_id"] for p in token_files.values()}
    if len(eot_ids) != 1:
        raise ValueError(f"token files disagree on the end-of-text id: {sorted(eot_ids)}")
    arrays = {name: np.load(path, mmap_mode="r") for name, path in token_files.items()}
    parts = mix_tokens(arrays, mode, eot_ids.pop())
    writer = NpyWriter(out_npy, np.result_type(*arrays.values()))
    try:  # plain reads, not the memory maps: copied pages would stay in the job's RSS
        for name, part in parts.items():
            src = arrays[name]
            with open(token_files[name], "rb") as f:
                f.seek(src.offset)
                for start in range(0, part.size, chunk):
                    writer.write(np.fromfile(f, dtype=src.dtype, count=min(chunk, part.size - start)))
    except BaseException:
        writer.abort()
        raise
    total = writer.close()
    summary = {"mode": mode, "tokens": total, "tokens_per_corpus": {n: int(a.size) for n, a in parts.items()},
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


def eval_blocks(ids: np.ndarray, block_size: int, max_tokens: int | None, source: str | Path | None = None) -> np.ndarray:
    """Non-overlapping [n_blocks, block_size] windows from the start of a token array (its first `max_tokens`).

    Too few tokens for one block is a one-line error naming `source` (a results/data/tokens/{corpus}/{split}.npy
    file: the file, its corpus and split) and what to change."""
    n = ids.size if max_tokens is None else min(ids.size, max_tokens)
    n_blocks = n // block_size
    if n_blocks == 0:
        corpus, split = (Path(source).parent.name, Path(source).stem) if source is not None else ("?", "given")
        capped = f" (capped at {max_tokens} by the job's eval_tokens)" if max_tokens is not None and max_tokens < ids.size else ""
        raise ConfigError(f"{source or 'token array'}: {n} {split} tokens of corpus '{corpus}'{capped} do not fill one block of {block_size} "
                          f"(lm.context_size); give corpora.{corpus} more text (max_bytes, validation_fraction), raise the "
                          "eval_tokens setting, or lower lm.context_size")
    return np.asarray(ids[: n_blocks * block_size], dtype=np.int64).reshape(n_blocks, block_size)


def load_blocks(path: str | Path, block_size: int, max_tokens: int | None) -> np.ndarray:
    """`eval_blocks` of a token file (results/data/tokens/{corpus}/{split}.npy), read memory-mapped."""
    return eval_blocks(np.load(path, mmap_mode="r"), block_size, max_tokens, source=path)


def blocks_from_files(files: list[str | Path], block_size: int, tokens_per_file: int | None) -> np.ndarray:
    """Evaluation blocks from the start of each token file, `tokens_per_file` from each, stacked."""
    return np.concatenate([load_blocks(f, block_size, tokens_per_file) for f in files])
