"""Choosing a corpus's documents in one pass over a stream, in bounded memory.

Each document is cleaned, sampled by `fraction` with a hash of (seed, corpus, text), passed through
the code filters when asked, and put in a shuffle buffer of `shuffle_buffer_mb` MB. A corpus whose
sample fits in the buffer is shuffled whole (one seeded permutation, caps, then the first
`validation_fraction` of it held out). A larger one streams through the buffer: once it is full,
each new document takes the place of a random one, which goes out; reading stops as soon as a cap
(`max_documents`, `max_bytes`, `max_tokens`) is reached, and every ~1/validation_fraction-th document
that goes out is held out.
"""

from __future__ import annotations

import hashlib
import logging
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tqdm import tqdm

from featureflow.config import CorpusError
from featureflow.data.sources import RECORD_SEP
from featureflow.settings import CorpusSettings

log = logging.getLogger(__name__)

MB = 1 << 20


class SplitSink(Protocol):
    """Where selected documents go (the corpus stage writes them to the split text files)."""

    def add(self, split: str, doc: str, n_bytes: int) -> None: ...


@dataclass
class SelectionStats:
    """What one pass read, dropped and kept, and why it stopped (the corpus summary's `selection`)."""

    read: int = 0            # non-empty documents read from the source
    sampled_out: int = 0     # dropped by `fraction`
    filtered: dict[str, int] = field(default_factory=dict)  # dropped by the code filters, by reason
    kept: int = 0            # written to the splits
    kept_bytes: int = 0
    buffer: str = "whole"    # "whole": the sample fit the shuffle buffer; "streaming": it did not
    stopped: str = "end of data"


def clean_document(text: str) -> str:
    """Normalise line ends and drop the record separator so documents can be joined safely."""
    return text.replace("\r\n", "\n").replace(RECORD_SEP, "").strip("\n")


def corpus_rng(seed: int, name: str) -> np.random.Generator:
    """RNG for one corpus: depends on the global seed and the corpus name only."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def sample_value(seed: int, corpus: str, text: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, corpus, text): the same document is kept or dropped
    by `fraction` in any shard order (and its exact duplicates with it)."""
    h = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=f"{seed}:{corpus}".encode()[:64])
    return int.from_bytes(h.digest(), "little") / 2.0**64


def byte_cap(spec: CorpusSettings) -> int | None:
    """The tighter of `max_bytes` and `max_tokens x bytes_per_token`, or None."""
    caps = [c for c in (spec.max_bytes, spec.max_tokens and int(spec.max_tokens * spec.bytes_per_token)) if c]
    return min(caps) if caps else None


def cap_key(spec: CorpusSettings) -> str:
    """The config key of the cap that binds first (for messages)."""
    if spec.max_tokens and (not spec.max_bytes or spec.max_tokens * spec.bytes_per_token < spec.max_bytes):
        return f"max_tokens={spec.max_tokens}"
    return f"max_bytes={spec.max_bytes}"


def candidates(name: str, raw: Iterator[str], spec: CorpusSettings, seed: int, stats: SelectionStats) -> Iterator[str]:
    """Cleaned, sampled and filtered documents of a raw stream, in stream order."""
    code_filter = None
    if spec.filter == "code":
        from featureflow.data.code_filters import CodeFilter, clean_text

        code_filter = CodeFilter()
        stats.filtered = code_filter.counts
    for doc in tqdm(raw, desc=f"read {name}", unit="doc", mininterval=10):
        text = clean_document(doc)
        if code_filter is not None:
            text = clean_text(text)
        if not text.strip():
            continue
        stats.read += 1
        if spec.fraction < 1.0 and sample_value(seed, name, text) >= spec.fraction:
            stats.sampled_out += 1
            continue
        if code_filter is not None and code_filter.reason(text) is not None:
            continue
        yield text


class _Capped:
    """Sends documents to the splits until a cap is reached; holds out a running share for validation."""

    def __init__(self, spec: CorpusSettings, sink: SplitSink, stats: SelectionStats) -> None:
        self.spec, self.sink, self.stats = spec, sink, stats
        self.max_bytes = byte_cap(spec)
        self.n_val = 0

    @property
    def full(self) -> bool:
        s = self.stats
        return bool((self.spec.max_documents and s.kept >= self.spec.max_documents)
                    or (self.max_bytes and s.kept_bytes >= self.max_bytes))

    def add(self, doc: str, n_bytes: int, split: str | None = None) -> bool:
        """Write one document (to `split`, or by the running share); False once a cap is reached."""
        if split is None:
            split = "validation" if self.n_val < math.ceil(self.spec.validation_fraction * (self.stats.kept + 1)) else "train"
        self.n_val += split == "validation"
        self.sink.add(split, doc, n_bytes)
        self.stats.kept += 1
        self.stats.kept_bytes += n_bytes
        if self.full:
            self.stats.stopped = "max_documents reached" if self.spec.max_documents and \
                self.stats.kept >= self.spec.max_documents else f"{cap_key(self.spec).split('=')[0]} reached"
            return False
        return True


def select(name: str, raw: Iterator[str], spec: CorpusSettings, seed: int, sink: SplitSink) -> SelectionStats:
    """Read `raw` once and send the chosen documents to `sink` by split; returns what was read and kept."""
    stats = SelectionStats()
    rng = corpus_rng(seed, name)
    out = _Capped(spec, sink, stats)
    limit = spec.shuffle_buffer_mb * MB
    buffer: list[tuple[str, int]] = []
    held = 0
    source = candidates(name, raw, spec, seed, stats)
    for doc in source:
        n_bytes = len(doc.encode("utf-8"))
        if stats.buffer == "whole":
            buffer.append((doc, n_bytes))
            held += n_bytes
            if held > limit:
                stats.buffer = "streaming"
                log.info("corpus %s: more than %s MB of documents: streaming through the shuffle buffer", name,
                         spec.shuffle_buffer_mb)
            continue
        j = int(rng.integers(len(buffer)))
        buffer[j], (doc, n_bytes) = (doc, n_bytes), buffer[j]
        if not out.add(doc, n_bytes):
            source.close()  # stop reading: the cap is reached
            break
    else:
        if stats.buffer == "whole":
            _write_whole(buffer, spec, rng, out)
        else:
            for j in rng.permutation(len(buffer)):
                if not out.add(*buffer[j]):
                    break
    return stats


def _write_whole(buffer: list[tuple[str, int]], spec: CorpusSettings, rng: np.random.Generator, out: _Capped) -> None:
    """A sample that fits the buffer: one permutation, caps on it, the first share held out."""
    order = rng.permutation(len(buffer))
    if spec.max_documents:
        order = order[: spec.max_documents]
    cap = byte_cap(spec)
    if cap:
        sizes = np.cumsum([buffer[i][1] for i in order])
        order = order[: int(np.searchsorted(sizes, cap)) + 1]
    n_val = min(len(order) - 1, max(1, round(len(order) * spec.validation_fraction)))
    for rank, i in enumerate(order):
        out.add(*buffer[i], split="validation" if rank < n_val else "train")
    if out.stats.stopped != "end of data":  # everything was read; the cap cut the shuffled sample
        out.stats.stopped = f"end of data, then {out.stats.stopped}"


def check_selection(name: str, spec: CorpusSettings, stats: SelectionStats, counts: dict[str, int]) -> None:
    """One line for a selection that leaves a split empty, naming the key that caused it."""
    if counts["train"] and counts["validation"]:
        return
    where = f"corpus '{name}'"
    if stats.read == 0:
        raise CorpusError(f"{where}: no non-empty documents")
    if spec.fraction < 1.0 and stats.read - stats.sampled_out < 2:
        raise CorpusError(f"{where}: corpora.{name}.fraction={spec.fraction} keeps {stats.read - stats.sampled_out} "
                          f"of {stats.read} documents; need at least 2 (raise the fraction)")
    if stats.stopped.endswith("reached") and stats.kept < 2:
        key = "max_documents" if "max_documents" in stats.stopped else cap_key(spec)
        raise CorpusError(f"{where}: corpora.{name}.{key} keeps only {stats.kept} document(s) "
                          f"({stats.kept_bytes} bytes); raise it to hold one out for validation")
    raise CorpusError(f"{where}: only {stats.kept} document(s) left after selection; need at least 2 to hold one out")
