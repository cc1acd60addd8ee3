"""Document joining and de-duplication used only to build the demo corpora (data/demo/)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from featureflow.data.code_filters import sha256_text

logger = logging.getLogger(__name__)

#: Character placed alone on a line between documents in the demo corpora.
DOC_SEPARATOR_CHAR = "\x1e"
#: Full separator used to join documents in a corpus ``.txt`` file.
DOC_SEPARATOR = "\n" + DOC_SEPARATOR_CHAR + "\n"


def dedup_documents(
    docs: Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, str]], int]:
    """Drop exact duplicates (same sha256 of the text), keeping the first.

    The input order is kept; returns the kept pairs and the number removed.
    """
    seen: set[str] = set()
    kept: list[tuple[str, str]] = []
    removed = 0
    for name, text in docs:
        digest = sha256_text(text)
        if digest in seen:
            removed += 1
            logger.debug("duplicate removed: %s", name)
            continue
        seen.add(digest)
        kept.append((name, text))
    return kept, removed


def join_documents(texts: Iterable[str]) -> str:
    """Join documents with :data:`DOC_SEPARATOR`; reject texts containing U+001E."""
    texts = list(texts)
    for i, text in enumerate(texts):
        if DOC_SEPARATOR_CHAR in text:
            raise ValueError(f"document {i} contains the separator U+001E")
    return DOC_SEPARATOR.join(texts)


def split_documents(corpus: str) -> list[str]:
    """Inverse of :func:`join_documents`."""
    return corpus.split(DOC_SEPARATOR) if corpus else []
