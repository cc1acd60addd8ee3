"""Where corpus documents come from, one at a time: local text files and `datasets` specs.

Nothing here holds more than one document (or one line) of a source in memory: local files are
read line by line, `datasets` specs are read with `streaming=True`. Errors about the input stop with
one line (CorpusError) that names the corpus, the source and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from featureflow.config import CorpusError, is_hub_dataset  # noqa: F401  (re-exported)
from featureflow.hub import HUB_OFFLINE_VARS, hub_access, hub_offline  # noqa: F401  (re-exported)

RECORD_SEP = "\x1e"
DOC_SEP = f"\n{RECORD_SEP}\n"  # how documents are joined in every text file this package writes



def split_documents(text: str, separator: str) -> list[str]:
    """Split text at lines holding only `separator`; an empty separator keeps one document."""
    if not separator:
        return [text]
    return list(_group_pieces(text.split("\n"), separator))


def _pieces(lines: Iterable[str]) -> Iterator[str]:
    """What `text.split("\n")` gives for the text of `lines` (each ending in "\n" but maybe the last)."""
    ended = True
    for line in lines:
        ended = line.endswith("\n")
        yield line[:-1] if ended else line
    if ended:
        yield ""


def _group_pieces(pieces: Iterable[str], separator: str) -> Iterator[str]:
    """Documents of newline-free pieces: a piece equal to `separator` (a trailing CR aside) ends one."""
    current: list[str] = []
    for piece in pieces:
        if piece.rstrip("\r") == separator:
            yield "\n".join(current)
            current = []
        else:
            current.append(piece)
    yield "\n".join(current)


def iter_file_documents(path: str | Path, separator: str) -> Iterator[str]:
    """Documents of one UTF-8 file, read line by line; non-UTF-8 bytes stop with the file and byte offset."""
    path = Path(path)
    if not separator:  # the whole file is one document
        raw = path.read_bytes()
        yield _decode(raw, path, 0)
        return

    def lines() -> Iterator[str]:
        offset = 0
        with open(path, "rb") as f:
            for raw in f:
                yield _decode(raw, path, offset)
                offset += len(raw)

    yield from _group_pieces(_pieces(lines()), separator)


def _decode(raw: bytes, path: Path, offset: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        at = offset + err.start
        raise CorpusError(f"{path}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {at})") from None


def iter_local_documents(paths: Iterable[Path], separator: str) -> Iterator[str]:
    """Documents of local UTF-8 files in the given order; a file with no text at all is an error."""
    for path in paths:
        has_text = False
        for doc in iter_file_documents(path, separator):
            has_text = has_text or bool(doc.strip())
            yield doc
        if not has_text:
            raise CorpusError(f"{path}: file holds no text")


def shuffled_files(paths: list[Path], seed: int, buffer_bytes: int) -> list[Path]:
    """The files in a seeded order when they are larger than the shuffle buffer (so that a cap
    does not take only the first files); in the given order when they all fit."""
    if sum(p.stat().st_size for p in paths) <= buffer_bytes or len(paths) < 2:
        return list(paths)
    order = np.random.default_rng([seed, len(paths)]).permutation(len(paths))
    return [paths[i] for i in order]


def iter_text_documents(path: str | Path) -> Iterator[str]:
    """Documents of a split text file written by the corpus stage (joined by DOC_SEP), streamed."""
    path = Path(path)
    if path.stat().st_size == 0:
        return
    yield from iter_file_documents(path, RECORD_SEP)


def _hub_error(corpus: str, dspec: dict[str, Any], err: Exception) -> CorpusError:
    """One line for a failure to open or read a `datasets` spec, with what to do about it."""
    name, kind = dspec["path"], type(err).__name__
    where = f"corpus '{corpus}': dataset '{name}'"
    text = str(err).splitlines()[0] if str(err) else kind
    if kind == "GatedRepoError" or "gated" in text.lower():
        return CorpusError(f"{where} is gated: accept its terms on https://huggingface.co/datasets/{name}, "
                           "then `huggingface-cli login` or set HF_TOKEN, and rerun")
    if kind in ("DatasetNotFoundError", "RepositoryNotFoundError", "FileNotFoundError", "DataFilesNotFoundError",
                "FileNotFoundDatasetsError"):
        return CorpusError(f"{where} was not found ({text}); check config key 'corpora.{corpus}.dataset' "
                           "(a private dataset also needs HF_TOKEN)")
    if "OfflineModeIsEnabled" in text or (hub_offline() and isinstance(err, ConnectionError)):
        return CorpusError(f"{where} cannot be read: the hub is offline here ({', '.join(HUB_OFFLINE_VARS)}); "
                           "run the corpus job where the network is (it is a local rule), or point "
                           f"'corpora.{corpus}.dataset' at local files")
    if "CastError" in kind:
        return CorpusError(f"{where}: its files do not share one set of columns ({kind}: {text}); every row needs "
                           f"column '{dspec['text_field']}' (config key 'corpora.{corpus}.dataset.text_field')")
    if isinstance(err, (ConnectionError, TimeoutError)) or kind in ("HfHubHTTPError", "ConnectError", "ReadTimeout"):
        return CorpusError(f"{where}: network failure ({text}); check the connection and rerun "
                           "(nothing of this corpus is kept until it is complete)")
    return CorpusError(f"{where} could not be read ({kind}: {text}); check its files and "
                       f"config key 'corpora.{corpus}.dataset'")


def _open_stream(datasets: Any, dspec: dict[str, Any], kwargs: dict[str, Any], seed: int) -> Any:
    """The spec's split as an IterableDataset, shards in a seeded order. While it is built, `datasets`
    is told torch is absent: it would import torch (2-3 s, ~300 MB) for every IterableDataset only to
    share its epoch with DataLoader workers, and a corpus job reads its rows in this process alone."""
    torch_available = datasets.config.TORCH_AVAILABLE
    datasets.config.TORCH_AVAILABLE = False
    try:
        ds = datasets.load_dataset(dspec["path"], split=dspec["split"], streaming=True, **kwargs)
        if ds.n_shards > 1:  # shard order only, one shard open at a time: rows are shuffled by our own buffer
            ds = ds.shuffle(seed=seed, buffer_size=1, max_buffer_input_shards=1)
        return ds
    finally:
        datasets.config.TORCH_AVAILABLE = torch_available


def iter_dataset_documents(corpus: str, dspec: dict[str, Any], seed: int) -> Iterator[str]:
    """Text of every row of a `datasets` spec, streamed (`streaming=True`), shards in a seeded order.

    A missing column, a null or non-string text, an unreadable shard or an unreachable hub stop with
    one line that names the corpus and the dataset.
    """
    import datasets  # heavy import, only for this path

    kwargs = {k: dspec[k] for k in ("name", "data_dir", "data_files", "revision") if dspec.get(k) is not None}
    field = dspec["text_field"]
    try:
        ds = _open_stream(datasets, dspec, kwargs, seed)
        if ds.column_names is not None and field not in ds.column_names:
            raise CorpusError(f"corpus '{corpus}': dataset '{dspec['path']}': no column '{field}' "
                              f"(columns: {', '.join(ds.column_names)}); set 'corpora.{corpus}.dataset.text_field'")
        for i, row in enumerate(ds):
            text = row.get(field)
            if not isinstance(text, str):
                if field not in row:
                    raise CorpusError(f"corpus '{corpus}': dataset '{dspec['path']}': no column '{field}' "
                                      f"(columns: {', '.join(row)}); set 'corpora.{corpus}.dataset.text_field'")
                what = "null" if text is None else type(text).__name__
                raise CorpusError(f"corpus '{corpus}': dataset '{dspec['path']}': row {i} has {what} text in "
                                  f"column '{field}' (config key 'corpora.{corpus}.dataset.text_field')")
            yield text
    except CorpusError:
        raise
    except Exception as err:  # datasets, pyarrow, fsspec and the hub raise many kinds: one line each
        raise _hub_error(corpus, dspec, err) from None
