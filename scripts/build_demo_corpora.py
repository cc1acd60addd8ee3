#!/usr/bin/env python3
"""Build the small embedded demo corpora under ``data/demo/``.

Four corpora are built, each a 2-5 MB UTF-8 text file plus a manifest:

* ``english``: Jane Austen's six novels (Debian ``r-cran-janeaustenr``), one
  document per chapter, hard-wrapped lines re-flowed into paragraphs.
  Stand-in for BabyLM.
* ``python``: CPython 3.11 standard library ``*.py`` files (Debian
  ``libpython3.11-minimal``), one document per file, filtered with
  :func:`featureflow.data.code_filters.filter_code_documents`. Stand-in for
  The Stack (Python).
* ``lua``: ``*.lua`` files of Debian ``rspamd`` and ``prosody``, deduplicated
  by hash and filtered the same way. Stand-in for The Stack (Lua).
* ``stories``: *not* TinyStories: *Alice's Adventures in Wonderland* and
  *Tom Sawyer* chapters plus deterministic synthetic stories from
  :mod:`scripts/demo_corpora/synthetic_stories.py`.

Every source is pinned to an exact version and sha256 and fetched with the
ordinary clients (``apt-get download PKG=VER``, ``pip download --no-deps``)
into a scratch folder, which is reused on later runs. The output is
deterministic: running the script twice gives byte-identical files.

Output format: ``data/demo/<corpus>/<corpus>.txt`` holds the documents joined
by ``"\\n\\x1e\\n"`` (a line with only U+001E); no document contains U+001E.
``manifest.json`` next to it records sources, licences, counts, sha256 and the
filters applied.

Usage: ``python scripts/build_demo_corpora.py [--scratch DIR] [--out DIR]
[--corpora english python lua stories]``. Needs Debian's ``apt-get``
(after ``apt-get update``), ``dpkg``, ``pip`` and the ``rdata`` package.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))  # the demo_corpora helpers

from demo_corpora.synthetic_stories import generate_stories  # noqa: E402
from demo_corpora.text_filters import DOC_SEPARATOR, dedup_documents, join_documents  # noqa: E402
from featureflow.data.code_filters import (  # noqa: E402
    GENERATED_HEADER_CHARS,
    GENERATED_HEADER_LINES,
    GENERATED_MARKERS,
    MAX_LINE_LENGTH,
    MAX_MEAN_LINE_LENGTH,
    MIN_ALNUM_FRACTION,
    clean_text,
    filter_code_documents,
)

logger = logging.getLogger("build_demo_corpora")

MAX_BYTES = 5_000_000  # hard cap per corpus .txt
MIN_BYTES = 2_000_000
PYTHON_TARGET_BYTES = 4_000_000  # add libpython3.11-stdlib only below this
LUA_MIN_BYTES = 2_000_000  # add lmod only below this
STORIES_TARGET_BYTES = 3_000_000
STORY_SEED = 20240601
ALL_CORPORA = ("english", "python", "lua", "stories")


@dataclass(frozen=True)
class Artifact:
    """A pinned download: a Debian binary package or a PyPI sdist."""

    name: str
    version: str
    origin: str  # "debian" or "pypi"
    sha256: str
    license: str


DEBS: dict[str, Artifact] = {a.name: a for a in (
    Artifact("r-cran-janeaustenr", "1.0.0-1", "debian",
             "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
             "MIT (package); the novels are public domain"),
    Artifact("libpython3.11-minimal", "3.11.2-6+deb12u9", "debian",
             "69f41cfa3f4ba17284e538f843069d7529c53c207d2ae17a5b02785944870e33",
             "PSF-2.0 (a few modules carry extra MIT/BSD-style notices)"),
    Artifact("libpython3.11-stdlib", "3.11.2-6+deb12u9", "debian",
             "10f13e000ee757f5f2d2d3569f9e30546214a0c850acd78695feae373bfa3e53",
             "PSF-2.0 (a few modules carry extra MIT/BSD-style notices)"),
    Artifact("rspamd", "3.4-1", "debian",
             "47e28ea27755015c70bbd5458dd44e9bcb93cc452bc0e2f82d8bd0725b274019",
             "Apache-2.0; bundled Lua contribs Expat (MIT) / BSD"),
    Artifact("prosody", "0.12.3-1+deb12u1", "debian",
             "ee51edd4acc3633a27c3acb13af6652fcde2434dc49b3e3c5572eb0b56a803e2",
             "Expat (MIT); net/dns.lua public domain; util/sasl.lua BSD-3-Clause"),
    Artifact("lmod", "8.6.19-1", "debian",
             "252456f7f9d289c8c15290b89c5fb3cc9cec702f572dc6ae8dc7818fc1df2d2e",
             "MIT (a few LGPL files)"),
    Artifact("golang-github-pierrec-lz4-dev", "2.5.2-2", "debian",
             "1dc71cab6853fb03005f102bf1a71d906d2413c144e1f96c80bb3af99e701550",
             "BSD-3-Clause (package); Tom Sawyer text public domain"),
)}
BROTLI = Artifact("brotli", "1.2.1", "pypi",
                  "02b2f7b5a83485efe448a44ddf7983def05c3bb1dcf917d4f7154070260e13de",
                  "MIT (package); Alice text public domain")

AUSTEN_DATA = "usr/lib/R/site-library/janeaustenr/data/Rdata"
TOM_SAWYER = "usr/share/gocode/src/github.com/pierrec/lz4/testdata/Mark.Twain-Tom.Sawyer.txt"
PY_LIB = "usr/lib/python3.11"
ALICE = "brotli-1.2.1/tests/testdata/alice29.txt"

CHAPTER_RE = re.compile(r"^(?:CHAPTER|Chapter)\s+(?:[0-9]+|[IVXLC]+)\.?$")
VOLUME_RE = re.compile(r"^VOLUME\s+[IVX]+$")


# --------------------------------------------------------------------------
# fetching


class Fetcher:
    """Downloads pinned artifacts into a scratch folder and unpacks them."""

    def __init__(self, scratch: Path, verify: bool = True) -> None:
        self.scratch = scratch
        self.dl = scratch / "downloads"
        self.dl.mkdir(parents=True, exist_ok=True)
        self.verify = verify

    def _check(self, path: Path, art: Artifact) -> None:
        digest = sha256_file(path)
        if digest != art.sha256:
            msg = (f"{path.name}: sha256 {digest} != pinned {art.sha256} "
                   "(different mirror build or architecture?)")
            if self.verify:
                raise RuntimeError(msg + "; rerun with --no-verify to accept")
            logger.warning(msg)

    def deb(self, name: str) -> Path:
        """Download (once) and freshly unpack a pinned Debian package."""
        art = DEBS[name]
        quoted = art.version.replace(":", "%3a")
        found = sorted(self.dl.glob(f"{art.name}_{quoted}_*.deb"))
        if not found:
            logger.info("apt-get download %s=%s", art.name, art.version)
            res = subprocess.run(
                ["apt-get", "download", f"{art.name}={art.version}"],
                cwd=self.dl, capture_output=True, text=True,
            )
            if res.returncode != 0:
                raise RuntimeError(
                    f"apt-get download {art.name}={art.version} failed (run `apt-get update`"
                    f" first?):\n{res.stderr}")
            found = sorted(self.dl.glob(f"{art.name}_{quoted}_*.deb"))
        deb = found[0]
        self._check(deb, art)
        out = self.scratch / "extract" / art.name
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        subprocess.run(["dpkg", "-x", str(deb), str(out)], check=True)
        return out

    def sdist(self, art: Artifact) -> Path:
        """Download (once) a pinned PyPI sdist; return the archive path."""
        found = sorted(self.dl.glob(f"{art.name}-{art.version}.tar.gz"))
        if not found:
            logger.info("pip download --no-deps --no-binary :all: %s==%s", art.name, art.version)
            pip = [sys.executable, "-m", "pip"]
            if subprocess.run(pip + ["--version"], capture_output=True).returncode != 0:
                pip = [shutil.which("pip3") or "pip"]
            subprocess.run(
                pip + ["download", "--no-deps", "--no-binary", ":all:", "-d", str(self.dl),
                       f"{art.name}=={art.version}"],
                check=True, capture_output=True,
            )
            found = sorted(self.dl.glob(f"{art.name}-{art.version}.tar.gz"))
        self._check(found[0], art)
        return found[0]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_files(root: Path, suffix: str) -> list[Path]:
    """Regular files (not symlinks) under ``root`` ending in ``suffix``, sorted."""
    out = []
    for dirpath, _dirs, files in os.walk(root):  # does not follow symlinked dirs
        for fname in files:
            path = Path(dirpath) / fname
            if fname.endswith(suffix) and path.is_file() and not path.is_symlink():
                out.append(path)
    return sorted(out)


# --------------------------------------------------------------------------
# prose helpers


def reflow(lines: Sequence[str]) -> list[str]:
    """Join hard-wrapped lines into paragraphs (blank lines separate them)."""
    paragraphs: list[str] = []
    cur = ""
    for raw in list(lines) + [""]:
        line = " ".join(raw.split())
        if not line:
            if cur:
                paragraphs.append(cur)
            cur = ""
        elif not cur:
            cur = line
        else:
            cur += line if cur.endswith("-") else " " + line
    return paragraphs


def split_chapters(
    lines: Sequence[str],
    is_heading: Callable[[str], bool],
    drop_line: Callable[[str], bool] = lambda _line: False,
    stop_at: Callable[[str], bool] = lambda _line: False,
) -> list[str]:
    """Split a book into chapter documents (front matter before the first
    heading is dropped), re-flowing each chapter into paragraphs."""
    chapters: list[list[str]] = []
    for raw in lines:
        line = raw.strip()
        if stop_at(line):
            break
        if is_heading(line):
            chapters.append([line, ""])
        elif chapters and not drop_line(line):
            chapters[-1].append(raw)
    docs = []
    for chapter in chapters:
        heading, body = chapter[0], reflow(chapter[1:])
        docs.append(clean_text("\n\n".join([heading] + body)))
    return docs


def cap_documents(docs: Sequence[tuple[str, str]], max_bytes: int) -> tuple[list[tuple[str, str]], int]:
    """Keep the longest prefix of ``docs`` whose joined size is <= ``max_bytes``."""
    kept: list[tuple[str, str]] = []
    total = 0
    sep = len(DOC_SEPARATOR.encode())
    for name, text in docs:
        size = len(text.encode()) + (sep if kept else 0)
        if total + size > max_bytes:
            break
        kept.append((name, text))
        total += size
    return kept, len(docs) - len(kept)


def prose_filter(docs: Sequence[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Clean prose documents, drop empty ones and exact duplicates (order kept)."""
    cleaned = [(n, clean_text(t)) for n, t in docs]
    nonempty = [(n, t) for n, t in cleaned if t.strip()]
    kept, dups = dedup_documents(nonempty)
    return kept, {"empty": len(cleaned) - len(nonempty), "duplicate": dups}


# --------------------------------------------------------------------------
# corpora


@dataclass
class Corpus:
    name: str
    description: str
    note: str
    docs: list[tuple[str, str]]
    sources: list[dict[str, Any]]
    filters: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def source_entry(art: Artifact, files: Iterable[str], **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "package": art.name, "version": art.version, "origin": art.origin,
        "license": art.license, "artifact_sha256": art.sha256,
    }
    entry.update(extra)
    entry["files"] = sorted(files)
    return entry


CODE_FILTER_DESCRIPTION = {
    "cleaner": ("featureflow.data.code_filters.clean_text: CRLF/CR->LF, drop BOM, NUL and other "
                "control characters except \\n and \\t (incl. U+001E), strip trailing "
                "whitespace per line (indentation kept), strip leading/trailing blank lines"),
    "max_line_length": MAX_LINE_LENGTH,
    "max_mean_line_length": MAX_MEAN_LINE_LENGTH,
    "min_alnum_fraction": MIN_ALNUM_FRACTION,
    "auto_generated_markers": list(GENERATED_MARKERS),
    "auto_generated_header": f"first {GENERATED_HEADER_LINES} lines within the first "
                             f"{GENERATED_HEADER_CHARS} characters, case-insensitive",
    "duplicates": "exact sha256 of the cleaned text; first in sorted path order kept",
}


def read_code(root: Path, prefix: str, suffix: str, skipped: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Read UTF-8 source files under ``root``; undecodable ones go to ``skipped``."""
    docs = []
    for path in list_files(root, suffix):
        name = f"{prefix}/{path.relative_to(root).as_posix()}"
        try:
            docs.append((name, path.read_bytes().decode("utf-8")))
        except UnicodeDecodeError:
            skipped.setdefault("not_utf8", []).append(name)
    return docs


def build_english(f: Fetcher) -> Corpus:
    import rdata  # pure Python; pinned to 1.1.0 in the project environment

    root = f.deb("r-cran-janeaustenr")
    base = root / AUSTEN_DATA
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Unknown file type: assumed RDS"
        index = rdata.conversion.convert(
            rdata.parser.parse_data(gzip.decompress(base.with_suffix(".rdx").read_bytes())))
        rdb = base.with_suffix(".rdb").read_bytes()
        novels: dict[str, list[str]] = {}
        for name, (off, length) in index["variables"].items():
            off, length = int(off), int(length)
            value = rdata.conversion.convert(
                rdata.parser.parse_data(zlib.decompress(rdb[off + 4:off + length])))
            novels[str(name)] = [v if isinstance(v, str) else "" for v in value.tolist()]

    def heading(line: str) -> bool:
        return bool(CHAPTER_RE.match(line)) or line.startswith("ADVERTISEMENT BY THE AUTHORESS")

    docs: list[tuple[str, str]] = []
    for novel in sorted(novels):
        chapters = split_chapters(
            novels[novel], heading,
            drop_line=lambda line: bool(VOLUME_RE.match(line)),
            stop_at=lambda line: line == "A NOTE ON THE TEXT",  # modern editor's note
        )
        logger.info("english: %s: %d chapters", novel, len(chapters))
        docs += [(f"{novel}/{i:03d}", text) for i, text in enumerate(chapters, 1)]
    kept, removed = prose_filter(docs)
    kept, removed["size_cap"] = cap_documents(kept, MAX_BYTES)
    return Corpus(
        name="english",
        description=("Jane Austen's six novels (Emma, Mansfield Park, Northanger Abbey, Persuasion, "
                     "Pride and Prejudice, Sense and Sensibility), one document per chapter, "
                     "hard-wrapped lines re-flowed into paragraphs separated by blank lines."),
        note=("Offline stand-in for the BabyLM 100M English corpus (narrative prose close to its "
              "Gutenberg portion). Title pages, VOLUME headings and the modern editor's 'A NOTE ON "
              "THE TEXT' in Northanger Abbey are dropped; Austen's own 'Advertisement' is kept as "
              "a document. Novels in alphabetical order of their janeaustenr variable names; "
              "texts are public domain."),
        docs=kept,
        sources=[source_entry(DEBS["r-cran-janeaustenr"],
                              [AUSTEN_DATA + ".rdb", AUSTEN_DATA + ".rdx"],
                              objects=sorted(novels), reader="rdata==1.1.0")],
        filters={"cleaner": CODE_FILTER_DESCRIPTION["cleaner"], "reflow": True,
                 "removed": removed},
    )


def build_python(f: Fetcher) -> Corpus:
    skipped: dict[str, list[str]] = {}
    removed_names: dict[str, list[str]] = {}
    pkg = "libpython3.11-minimal"
    raw = read_code(f.deb(pkg) / PY_LIB, f"{pkg}/{PY_LIB}", ".py", skipped)
    kept, counts = filter_code_documents(raw, removed=removed_names)
    sources = [(pkg, kept)]
    if corpus_bytes(kept) < PYTHON_TARGET_BYTES:
        pkg2 = "libpython3.11-stdlib"
        raw2 = read_code(f.deb(pkg2) / PY_LIB, f"{pkg2}/{PY_LIB}", ".py", skipped)
        removed_names = {}
        kept2, counts2 = filter_code_documents(raw + raw2, removed=removed_names)
        kept_min = [d for d in kept2 if d[0].startswith(pkg + "/")]
        extra, _ = cap_documents([d for d in kept2 if d[0].startswith(pkg2 + "/")],
                                 PYTHON_TARGET_BYTES - corpus_bytes(kept_min))
        kept, counts = kept_min + extra, counts2
        sources = [(pkg, kept_min), (pkg2, extra)]
    counts["not_utf8"] = len(skipped.get("not_utf8", []))
    kept = sorted(kept, key=lambda d: d[0].split("/", 1)[1])  # by path in the file system
    kept, counts["size_cap"] = cap_documents(kept, MAX_BYTES)
    names = {n for n, _ in kept}
    return Corpus(
        name="python",
        description=("CPython 3.11 standard-library *.py files from Debian (regular files under "
                     f"{PY_LIB}), one document per file, ordered by path, filtered like The Stack."),
        note=("Offline stand-in for The Stack (Python). Files are cleaned and filtered with "
              "featureflow.data.code_filters.filter_code_documents; file contents are otherwise "
              "verbatim (no path header). libpython3.11-stdlib is only added when "
              f"libpython3.11-minimal alone gives less than {PYTHON_TARGET_BYTES} bytes."),
        docs=kept,
        sources=[source_entry(DEBS[p], [n.split("/", 1)[1] for n in names if n.startswith(p + "/")])
                 for p, _ in sources],
        filters={**CODE_FILTER_DESCRIPTION, "removed": counts,
                 "removed_files": {k: sorted(v) for k, v in
                                   sorted({**removed_names, **skipped}.items())}},
    )


def build_lua(f: Fetcher) -> Corpus:
    skipped: dict[str, list[str]] = {}
    removed_names: dict[str, list[str]] = {}
    pkgs = ["prosody", "rspamd"]
    raw: list[tuple[str, str]] = []
    for pkg in pkgs:
        raw += read_code(f.deb(pkg), pkg, ".lua", skipped)
    kept, counts = filter_code_documents(raw, removed=removed_names)
    if corpus_bytes(kept) < LUA_MIN_BYTES:
        pkgs.append("lmod")
        raw += read_code(f.deb("lmod"), "lmod", ".lua", skipped)
        removed_names = {}
        kept, counts = filter_code_documents(raw, removed=removed_names)
    counts["not_utf8"] = len(skipped.get("not_utf8", []))
    kept, counts["size_cap"] = cap_documents(kept, MAX_BYTES)
    names = {n for n, _ in kept}
    return Corpus(
        name="lua",
        description=("*.lua files of Debian rspamd and prosody (regular files only, symlinks not "
                     "followed), one document per file, ordered by package/path, deduplicated "
                     "by hash across packages and filtered like The Stack."),
        note=("Offline stand-in for The Stack (Lua). rspamd bundles copies of third-party Lua "
              "modules; exact duplicates are removed by hash. lmod (a few LGPL files) is only "
              f"added when rspamd + prosody give less than {LUA_MIN_BYTES} bytes "
              f"({'added' if 'lmod' in pkgs else 'not needed'})."),
        docs=kept,
        sources=[source_entry(DEBS[p], [n.split("/", 1)[1] for n in names if n.startswith(p + "/")])
                 for p in pkgs],
        filters={**CODE_FILTER_DESCRIPTION, "removed": counts,
                 "removed_files": {k: sorted(v) for k, v in
                                   sorted({**removed_names, **skipped}.items())}},
    )


def build_stories(f: Fetcher) -> Corpus:
    with tarfile.open(f.sdist(BROTLI)) as tar:
        member = tar.extractfile(ALICE)
        assert member is not None
        alice = member.read().decode("utf-8").replace("\r\n", "\n")
    tom = (f.deb("golang-github-pierrec-lz4-dev") / TOM_SAWYER).read_text(encoding="utf-8")

    alice_docs = split_chapters(alice.split("\n"), lambda line: bool(CHAPTER_RE.match(line)))
    tom_docs = split_chapters(tom.split("\n"),
                              lambda line: bool(CHAPTER_RE.match(line)) or line == "CONCLUSION")
    logger.info("stories: Alice %d chapters, Tom Sawyer %d chapters", len(alice_docs), len(tom_docs))
    real = ([(f"alice/{i:02d}", t) for i, t in enumerate(alice_docs, 1)]
            + [(f"tom_sawyer/{i:02d}", t) for i, t in enumerate(tom_docs, 1)])
    real, removed = prose_filter(real)

    budget = STORIES_TARGET_BYTES - corpus_bytes(real) - len(DOC_SEPARATOR.encode())
    n = 2048
    while True:  # generate_stories(n, seed) is a prefix of generate_stories(m, seed), m > n
        synth = [(f"synthetic/{i:05d}", s) for i, s in enumerate(generate_stories(n, STORY_SEED))]
        synth, synth_removed = prose_filter(synth)
        chosen, left = cap_documents(synth, budget)
        if left:
            break
        n *= 2
    removed = {k: removed[k] + synth_removed[k] for k in removed}
    docs, removed["size_cap"] = cap_documents(real + chosen, MAX_BYTES)
    n_synth = sum(1 for name, _ in docs if name.startswith("synthetic/"))
    return Corpus(
        name="stories",
        description=("Short simple stories: the chapters of Alice's Adventures in Wonderland and "
                     "The Adventures of Tom Sawyer, followed by synthetic TinyStories-like "
                     "stories generated by scripts/demo_corpora/synthetic_stories.py."),
        note=("THIS IS NOT TINYSTORIES. It is an offline stand-in: TinyStories cannot be fetched "
              "from the Hugging Face Hub in this build environment and no Debian, PyPI or npm "
              "package ships it (or any fable/fairy-tale collection). The corpus is two "
              "public-domain children's novels split into chapters (front matter dropped, lines "
              "re-flowed into paragraphs) plus deterministic template-generated stories "
              f"(generate_stories(n, seed={STORY_SEED}), first {n_synth} stories, enough to "
              f"reach about {STORIES_TARGET_BYTES} bytes) with TinyStories' style: tiny "
              "vocabulary, 'Once upon a time...', a problem, dialogue, a resolution and a moral. "
              "Results on it are not comparable to results on real TinyStories."),
        docs=docs,
        sources=[
            {"package": BROTLI.name, "version": BROTLI.version, "origin": "pypi",
             "license": BROTLI.license, "artifact_sha256": BROTLI.sha256,
             "files": [ALICE], "processing": "CRLF -> LF, split at CHAPTER lines"},
            source_entry(DEBS["golang-github-pierrec-lz4-dev"], [TOM_SAWYER],
                         processing="split at CHAPTER / CONCLUSION lines; header and preface dropped"),
            {"package": "scripts/demo_corpora/synthetic_stories.py", "version": f"seed={STORY_SEED}",
             "origin": "generated", "license": "generated by this project; no third-party text",
             "files": [], "n_stories": n_synth},
        ],
        filters={"cleaner": CODE_FILTER_DESCRIPTION["cleaner"], "reflow": True,
                 "removed": removed},
    )


# --------------------------------------------------------------------------
# output


def corpus_bytes(docs: Sequence[tuple[str, str]]) -> int:
    if not docs:
        return 0
    sep = len(DOC_SEPARATOR.encode())
    return sum(len(t.encode()) for _, t in docs) + sep * (len(docs) - 1)


def write_corpus(corpus: Corpus, out_root: Path) -> dict[str, Any]:
    text = join_documents(t for _, t in corpus.docs)
    data = text.encode("utf-8")
    if not MIN_BYTES <= len(data) <= MAX_BYTES:
        raise RuntimeError(f"{corpus.name}: {len(data)} bytes is outside {MIN_BYTES}-{MAX_BYTES}")
    out = out_root / corpus.name
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "corpus": corpus.name,
        "description": corpus.description,
        "file": f"{corpus.name}.txt",
        "format": "UTF-8; documents joined by '\\n\\u001e\\n' (a line holding only U+001E); "
                  "no trailing newline; no document contains U+001E",
        "n_documents": len(corpus.docs),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "sources": corpus.sources,
        "filters": corpus.filters,
        "note": corpus.note,
        "built_by": "scripts/build_demo_corpora.py",
        **corpus.extra,
    }
    _write_if_changed(out / f"{corpus.name}.txt", data)
    _write_if_changed(out / "manifest.json",
                      (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    logger.info("%s: %d documents, %d bytes, sha256 %s", corpus.name, len(corpus.docs),
                len(data), manifest["sha256"][:12])
    return manifest


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


BUILDERS: dict[str, Callable[[Fetcher], Corpus]] = {
    "english": build_english, "python": build_python, "lua": build_lua, "stories": build_stories,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/featureflow-corpora"),
                        help="download/unpack folder (reused between runs)")
    parser.add_argument("--out", type=Path, default=REPO / "data" / "demo",
                        help="output folder (default: data/demo in the repository)")
    parser.add_argument("--corpora", nargs="+", choices=ALL_CORPORA, default=list(ALL_CORPORA))
    parser.add_argument("--no-verify", action="store_true",
                        help="warn instead of failing when a download's sha256 differs from the pin")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fetcher = Fetcher(args.scratch, verify=not args.no_verify)
    start = time.monotonic()
    for name in args.corpora:
        write_corpus(BUILDERS[name](fetcher), args.out)
    logger.info("done in %.1f s", time.monotonic() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
