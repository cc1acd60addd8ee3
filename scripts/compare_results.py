"""Compare two results folders file by file and list what differs, timings and plotly's random ids aside.

For checking that a change leaves a run's outputs as they were: run the same config at two commits into
two folders, then

    python scripts/compare_results.py results-before results-after [--rename flow/decoder/=flow/decoder_cosine/]

`--rename OLD=NEW` compares A's files under OLD with B's under NEW (a result folder that was renamed).

Skipped: logs/, benchmarks/, checkpoints/ and Snakemake's own files. Masked before comparing: plotly's
random div ids (UUIDs), wall-clock fields of JSON and CSV/TSV files (names with seconds, elapsed, time
or duration), and the dates in HTML pages. Exit status 1 when any file differs or exists on one side only.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

SKIP_DIRS = {"logs", "benchmarks", "checkpoints", ".snakemake"}
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMING_KEY = rb'"[^"]*(?:seconds|elapsed|_time|time_s|duration|_s)"\s*:\s*[-0-9.eE+]+'
DATE = re.compile(rb"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?")
TIMING_COLUMN = re.compile(r"seconds|elapsed|time|duration")


def files_of(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and not SKIP_DIRS & set(p.relative_to(root).parts[:-1])}


def _mask_table(data: bytes, sep: str) -> bytes:
    lines = data.decode("utf-8", errors="replace").splitlines()
    if not lines:
        return data
    header = lines[0].split(sep)
    timing = {i for i, name in enumerate(header) if TIMING_COLUMN.search(name)}
    out = [lines[0]] + [sep.join("*" if i in timing else v for i, v in enumerate(line.split(sep))) for line in lines[1:]]
    return "\n".join(out).encode()


def masked(path: Path) -> bytes:
    """The file's bytes with what legitimately differs between two runs replaced by a placeholder."""
    data = path.read_bytes()
    data = UUID.sub(b"<uuid>", data)
    if path.suffix == ".json":
        data = re.sub(TIMING_KEY, lambda m: m.group(0).split(b":")[0] + b": <t>", data)
    elif path.suffix in (".csv", ".tsv"):
        data = _mask_table(data, "," if path.suffix == ".csv" else "\t")
    elif path.suffix in (".html", ".md"):
        data = DATE.sub(b"<date>", data)
    return data


def renamed(rel: str, renames: dict[str, str]) -> str:
    """A's relative path `rel` as B names it (the first matching OLD prefix replaced by its NEW)."""
    return next((new + rel[len(old):] for old, new in renames.items() if rel.startswith(old)), rel)


def compare(a: Path, b: Path, renames: dict[str, str] | None = None) -> dict[str, list[str]]:
    """{'only_a': [...], 'only_b': [...], 'differ': [...], 'same_after_masking': [...]}: relative paths (B's names)."""
    fa = {renamed(rel, renames or {}): rel for rel in files_of(a)}
    fb = files_of(b)
    out: dict[str, list[str]] = {"only_a": sorted(fa[r] for r in set(fa) - fb), "only_b": sorted(fb - set(fa)), "differ": [],
                                 "same_after_masking": []}
    for rel in sorted(set(fa) & fb):
        pa, pb = a / fa[rel], b / rel
        if pa.read_bytes() == pb.read_bytes():
            continue
        out["differ" if masked(pa) != masked(pb) else "same_after_masking"].append(rel)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                        help="compare A's files under OLD with B's under NEW (repeatable)")
    args = parser.parse_args()
    renames = dict(r.split("=", 1) for r in args.rename)
    result = compare(args.a, args.b, renames)
    n = len({renamed(rel, renames) for rel in files_of(args.a)} & files_of(args.b))
    print(f"{n} files in both; {len(result['same_after_masking'])} differ only in timings/ids; "
          f"{len(result['differ'])} differ; {len(result['only_a'])} only in {args.a}; {len(result['only_b'])} only in {args.b}")
    for kind in ("differ", "only_a", "only_b"):
        for rel in result[kind]:
            print(f"  {kind}: {rel}")
    return 1 if result["differ"] or result["only_a"] or result["only_b"] else 0


if __name__ == "__main__":
    sys.exit(main())
