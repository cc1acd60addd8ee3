"""Corpus rule: read a corpus (local files or a `datasets` spec), split it by document, write text.

Outputs (one set per corpus)::

    results/data/corpora/{corpus}/
        train.txt          documents joined by DOC_SEP (a line holding only U+001E)
        validation.txt
        split.json         document/byte counts and the settings that produced them
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from featureflow.config import CorpusError, resolve_local_files
from featureflow.paths import SPLITS
from featureflow.settings import CorpusSettings

log = logging.getLogger(__name__)

RECORD_SEP = "\x1e"
DOC_SEP = f"\n{RECORD_SEP}\n"  # how documents are joined in every text file this package writes


def split_documents(text: str, separator: str) -> list[str]:
    """Split text at lines holding only `separator`; an empty separator keeps one document."""
    if not separator:
        return [text]
    docs, current = [], []
    for line in text.split("\n"):
        if line.rstrip("\r") == separator:
            docs.append("\n".join(current))
            current = []
        else:
            current.append(line)
    docs.append("\n".join(current))
    return docs


def read_local_documents(paths: Iterable[Path], separator: str) -> Iterator[str]:
    """Yield documents of local UTF-8 files; non-UTF-8 bytes stop with the file and byte offset."""
    for path in paths:
        raw = Path(path).read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorpusError(f"{path}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
        if not text.strip():
            raise CorpusError(f"{path}: file holds no text")
        yield from split_documents(text, separator)


def read_dataset_documents(dspec: dict[str, Any]) -> Iterator[str]:
    """Yield the text column of a `datasets.load_dataset` spec (hub id or json/parquet/text files)."""
    import datasets  # heavy import, only for this path

    kwargs = {k: dspec[k] for k in ("name", "data_dir", "data_files", "revision") if dspec.get(k) is not None}
    ds = datasets.load_dataset(dspec["path"], split=dspec["split"], **kwargs)
    field = dspec["text_field"]
    if field not in ds.column_names:
        raise CorpusError(f"dataset '{dspec['path']}': no column '{field}' (columns: {', '.join(ds.column_names)})")
    for row in ds:
        text = row[field]
        if text is not None:
            yield str(text)


def clean_document(text: str) -> str:
    """Normalise line ends and drop the record separator so documents can be joined safely."""
    return text.replace("\r\n", "\n").replace(RECORD_SEP, "").strip("\n")


def corpus_rng(seed: int, name: str) -> np.random.Generator:
    """RNG for one corpus: depends on the global seed and the corpus name only."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def select_and_split(docs: list[str], spec: CorpusSettings, rng: np.random.Generator) -> dict[str, list[str]]:
    """Shuffle documents, apply fraction/max_documents/max_bytes, and split off validation."""
    order = rng.permutation(len(docs))
    if spec.fraction < 1.0:
        order = order[: max(2, round(len(order) * spec.fraction))]
    if spec.max_documents:
        order = order[: spec.max_documents]
    chosen = [docs[i] for i in order]
    if spec.max_bytes:
        total, keep = 0, len(chosen)
        for i, doc in enumerate(chosen):
            total += len(doc.encode("utf-8"))
            if total >= spec.max_bytes:
                keep = i + 1
                break
        chosen = chosen[:keep]
    if len(chosen) < 2:
        raise CorpusError(f"only {len(chosen)} document(s) left after selection; need at least 2 to hold one out")
    n_val = min(len(chosen) - 1, max(1, round(len(chosen) * spec.validation_fraction)))
    return {"validation": chosen[:n_val], "train": chosen[n_val:]}


def load_documents(name: str, spec: CorpusSettings, workdir: str | Path = ".") -> list[str]:
    """All non-empty, cleaned documents of one corpus spec, filtered if the spec asks for it."""
    if spec.files is not None:
        raw = read_local_documents(resolve_local_files(name, spec.files, workdir), spec.doc_separator)
    else:
        raw = read_dataset_documents(spec.dataset)
    docs = [d for d in (clean_document(t) for t in raw) if d.strip()]
    if not docs:
        raise CorpusError(f"corpus '{name}': no non-empty documents")
    if spec.filter == "code":
        from featureflow.data.code_filters import filter_code_documents

        kept, removed = filter_code_documents([(f"{i:09d}", d) for i, d in enumerate(docs)])  # padded: keeps input order
        log.info("corpus %s: code filters removed %s", name, removed)
        docs = [d for _, d in kept]
    return docs


def write_documents(docs: list[str], path: str | Path) -> None:
    Path(path).write_text(DOC_SEP.join(docs), encoding="utf-8")


def read_documents(path: str | Path) -> list[str]:
    """Documents of a text file written by this stage."""
    text = Path(path).read_text(encoding="utf-8")
    return text.split(DOC_SEP) if text else []


def prepare_corpus(name: str, texts: dict[str, str | Path], summary_json: str | Path, spec: CorpusSettings, seed: int,
                   workdir: str | Path = ".") -> dict[str, Any]:
    """Load, select and split one corpus; write each split's text to `texts[split]` and the counts to `summary_json`."""
    docs = load_documents(name, spec, workdir)
    try:
        splits = select_and_split(docs, spec, corpus_rng(seed, name))
    except CorpusError as err:
        raise CorpusError(f"corpus '{name}': {err}") from None
    summary: dict[str, Any] = {"corpus": name, "seed": seed, "spec": dataclasses.asdict(spec), "documents_read": len(docs)}
    for split in SPLITS:
        Path(texts[split]).parent.mkdir(parents=True, exist_ok=True)
        write_documents(splits[split], texts[split])
        summary[split] = {"documents": len(splits[split]), "bytes": sum(len(d.encode("utf-8")) for d in splits[split])}
        log.info("corpus %s/%s: %d documents, %d bytes", name, split, summary[split]["documents"], summary[split]["bytes"])
    Path(summary_json).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
