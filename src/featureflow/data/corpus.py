"""Corpus rule: read a corpus (local files or a `datasets` spec), choose and split its documents, write text.

Outputs (one set per corpus)::

    results/data/corpora/{corpus}/
        train.txt          documents joined by DOC_SEP (a line holding only U+001E)
        validation.txt
        split.json         document/byte counts, what was read and dropped, and why reading stopped

The corpus is read once as a stream (featureflow.data.sources) and chosen in bounded memory
(featureflow.data.select). The text files are written under temporary names and renamed at the
end, so a job killed half-way never leaves a corpus that looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from featureflow.config import resolve_local_files
from featureflow.data.select import SelectionStats, candidates, check_selection, select
from featureflow.data.sources import (
    DOC_SEP,
    RECORD_SEP,
    is_hub_dataset,
    iter_dataset_documents,
    iter_local_documents,
    iter_text_documents,
    shuffled_files,
    split_documents,
)
from featureflow.paths import SPLITS
from featureflow.settings import CorpusSettings

__all__ = ["DOC_SEP", "RECORD_SEP", "is_hub_dataset", "load_documents", "prepare_corpus", "raw_documents",
           "read_documents", "split_documents", "write_documents"]

log = logging.getLogger(__name__)


def raw_documents(name: str, spec: CorpusSettings, seed: int, workdir: str | Path = ".") -> Iterator[str]:
    """The documents of a corpus spec as read, one at a time (files or shards in a seeded order when
    they exceed the shuffle buffer)."""
    if spec.files is not None:
        paths = resolve_local_files(name, spec.files, workdir)
        return iter_local_documents(shuffled_files(paths, seed, int(spec.shuffle_buffer_mb * 2**20)), spec.doc_separator)
    return iter_dataset_documents(name, spec.dataset, seed)


class _SplitFiles:
    """The split text files of one corpus, written as documents arrive, renamed into place by `commit`."""

    def __init__(self, texts: dict[str, str | Path]) -> None:
        self.final = {s: Path(texts[s]) for s in SPLITS}
        self.tmp = {s: p.with_name(p.name + ".part") for s, p in self.final.items()}
        self.files: dict[str, IO[str]] = {}
        self.counts = {s: 0 for s in SPLITS}
        self.bytes = {s: 0 for s in SPLITS}
        for split, path in self.tmp.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.files[split] = open(path, "w", encoding="utf-8", newline="")

    def add(self, split: str, doc: str, n_bytes: int) -> None:
        f = self.files[split]
        if self.counts[split]:
            f.write(DOC_SEP)
        f.write(doc)
        self.counts[split] += 1
        self.bytes[split] += n_bytes

    def close(self, keep: bool) -> None:
        for split, f in self.files.items():
            f.close()
            if keep:
                os.replace(self.tmp[split], self.final[split])
            else:
                self.tmp[split].unlink(missing_ok=True)


def prepare_corpus(name: str, texts: dict[str, str | Path], summary_json: str | Path, spec: CorpusSettings, seed: int,
                   workdir: str | Path = ".") -> dict[str, Any]:
    """Read, choose and split one corpus; write each split's text to `texts[split]` and the counts to `summary_json`."""
    out = _SplitFiles(texts)
    try:
        stats = select(name, raw_documents(name, spec, seed, workdir), spec, seed, out)
        check_selection(name, spec, stats, out.counts)
    except BaseException:
        out.close(keep=False)
        raise
    out.close(keep=True)
    summary = corpus_summary(name, spec, seed, stats, out)
    Path(summary_json).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def corpus_summary(name: str, spec: CorpusSettings, seed: int, stats: SelectionStats, out: _SplitFiles) -> dict[str, Any]:
    summary: dict[str, Any] = {"corpus": name, "seed": seed, "spec": dataclasses.asdict(spec),
                               "documents_read": stats.read, "selection": dataclasses.asdict(stats)}
    for split in SPLITS:
        summary[split] = {"documents": out.counts[split], "bytes": out.bytes[split]}
        log.info("corpus %s/%s: %d documents, %d bytes", name, split, out.counts[split], out.bytes[split])
    log.info("corpus %s: read %d documents, sampled out %d, filtered %s, kept %d; stopped: %s (%s buffer)", name,
             stats.read, stats.sampled_out, {k: v for k, v in stats.filtered.items() if v}, stats.kept, stats.stopped,
             stats.buffer)
    return summary


def load_documents(name: str, spec: CorpusSettings, seed: int, workdir: str | Path = ".") -> list[str]:
    """Every document a corpus spec would choose from (cleaned, sampled and filtered), in reading order.

    For tests and small corpora: it holds them all in memory.
    """
    return list(candidates(name, raw_documents(name, spec, seed, workdir), spec, seed, SelectionStats()))


def write_documents(docs: list[str], path: str | Path) -> None:
    Path(path).write_text(DOC_SEP.join(docs), encoding="utf-8")


def read_documents(path: str | Path) -> list[str]:
    """Documents of a text file written by this stage (all in memory; `iter_text_documents` streams)."""
    return list(iter_text_documents(path))
