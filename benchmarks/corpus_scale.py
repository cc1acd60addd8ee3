"""Data stage at scale: corpus -> tokens -> mixture on synthetic JSONL corpora of 1 GB and 4 GB (issue 22, item 7).

Synthetic documents (1-20 KB, log-uniform) are cut from the demo corpora's code and prose at
random line boundaries and stitched together, some with a non-ASCII line (accents, Cyrillic, CJK,
a few emoji); they are written as JSONL (or parquet) shards of `--shard-mb` MB into a scratch
folder, deterministically from `--seed`. Generation is not timed.

Each size then runs the data stage's jobs exactly as the workflow scripts call them, each in its own
child process, with `fraction: 0.1` and no cap:

    corpus   featureflow.data.corpus.prepare_corpus (a `datasets` json/parquet spec, streamed)
    tokens   featureflow.data.tokens.tokenize_split of the train split, Mistral tokenizer, threads=2
    mixture  featureflow.data.tokens.build_mixture("even") of that token file and a copy of it

Per job: the seconds of the call itself (imports excluded; the process's wall time is beside it),
MB/s of input (corpus: shard bytes; tokens: UTF-8 text bytes; mixture: token file bytes), CPU
seconds, and peak RSS: the child's VmHWM (read by the child at its end and polled from
/proc/<pid>/status), what RSS-based accounting sees; os.wait4's ru_maxrss is kept beside it (on
Linux it also carries the launching process's high-water mark, so this process stays small and
generates the shards in a child too). The peak anonymous and file-backed parts are polled as well:
a memory-mapped file's pages count in RSS but are page cache, dropped under memory pressure.

Beside them (the package now reads one shard at a time and encodes with `encode_batch_fast`, the
fixes the first run of this script suggested; --no-candidates drops their rows): the encode rate of the previous
tokenize_split (f3ed4f6: every document in memory,
`encode_batch` in batches of 512 documents) and of today's (batches of ~4 MB / 4096 documents) on
the same text in one process, RAYON_NUM_THREADS=2; the peak RSS of the previous corpus reader
(f3ed4f6: non-streaming `datasets.load_dataset` and every document in a list) at the smallest
size; and that of a child that only imports the modules (the floor of every job).

    .venv/bin/python benchmarks/corpus_scale.py              # 1 GB and 4 GB -> benchmarks/results/corpus_scale.json
    .venv/bin/python benchmarks/corpus_scale.py --quick      # 0.05 and 0.2 GB, to try it
    .venv/bin/python benchmarks/corpus_scale.py --sizes 1 4 --keep --scratch /data/bench

Shards are read back from the page cache (they were just written; `os.sync()` runs before every job).
Other processes may share the cores: the load average at the start and end, and at each job's start,
is in the JSON, with each job's CPU seconds and `cores_used` (CPU s / wall s); linearity is judged on
CPU seconds per MB, which contention does not inflate.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

MB = 1 << 20
GB = 1 << 30
OLD_COMMIT = "f3ed4f6"  # the data stage before it streamed
SOURCES = {"python": 0.4, "lua": 0.2, "english": 0.25, "stories": 0.15}  # demo corpora and their share of documents
NON_ASCII = [
    "# Größe der Einträge: naïve café, façade, jalapeño, smørrebrød",
    "-- Привет, мир: проверка кодировки текста",
    "# 注释：这是一个测试文件，用于检查分词器的速度",
    "-- コメント：データを読み込んで、トークンに変換します",
    "# Ελληνικά: αβγδε, λόγος και ἀρχή",
    "# Ünïcödé quotes “like these” — and dashes – and … ellipses",
]
EMOJI = ["# done ✅ 🚀 🎉", "-- TODO 🐛 fix this 🙈"]
STAGES = ("corpus", "tokens", "mixture")
# sources.iter_dataset_documents orders shards with `ds.shuffle(seed=seed, buffer_size=1)`; datasets 5.x's shuffle
# then also interleaves up to `max_buffer_input_shards=10` shards, each read ahead by its own thread, in 1-row
# Arrow batches. The candidate row runs the same corpus job with max_buffer_input_shards=1 (shard order only).
CANDIDATE_SHUFFLE = "corpus, shuffle(max_buffer_input_shards=1) (candidate)"
RSS_LIMIT_MB = 2048
RSS_GROWTH = 1.2        # peak RSS at the largest size / at the smallest
LINEAR_TOLERANCE = 1.25  # seconds per MB at the largest size / at the smallest
TOKENS_MB_S = 5.0


# ---------------------------------------------------------------- synthetic corpus


def load_sources() -> dict[str, tuple[str, np.ndarray]]:
    """The demo corpora's text (document separators dropped) and the offsets of their line starts."""
    out = {}
    for name in SOURCES:
        text = (REPO / f"data/demo/{name}/{name}.txt").read_text(encoding="utf-8").replace("\n\x1e\n", "\n")
        starts = np.flatnonzero(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) == 10) + 1
        out[name] = (text, np.concatenate([[0], starts[starts < len(text)]]))
    return out


def make_document(rng: np.random.Generator, sources: dict[str, tuple[str, np.ndarray]], names: list[str],
                  weights: np.ndarray) -> str:
    """One document of 1-20 KB: runs of whole lines from one demo corpus, maybe with a non-ASCII line."""
    text, starts = sources[names[rng.choice(len(names), p=weights)]]
    target = int(math.exp(rng.uniform(math.log(1000), math.log(20000))))
    pieces, size = [], 0
    while size < target:
        i = int(rng.integers(len(starts) - 1))
        end = int(np.searchsorted(starts, starts[i] + min(target - size, int(rng.integers(400, 6000)))))
        piece = text[starts[i] : starts[min(max(end, i + 1), len(starts) - 1)]]
        pieces.append(piece)
        size += len(piece) + 1
    u = rng.random()
    if u < 0.3:
        pieces.insert(int(rng.integers(len(pieces) + 1)), NON_ASCII[int(rng.integers(len(NON_ASCII)))] + "\n")
    if u < 0.03:
        pieces.insert(int(rng.integers(len(pieces) + 1)), EMOJI[int(rng.integers(len(EMOJI)))] + "\n")
    return "".join(pieces).strip("\n")


def generate(folder: Path, size_bytes: int, shard_bytes: int, fmt: str, seed: int) -> dict[str, Any]:
    """Write shards of synthetic documents until `size_bytes` bytes are on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = load_sources()
    names = list(SOURCES)
    weights = np.array([SOURCES[n] for n in names])
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    total = n_docs = text_bytes = 0
    files: list[str] = []
    while total < size_bytes:
        path = folder / f"shard-{len(files):05d}.{'jsonl' if fmt == 'jsonl' else 'parquet'}"
        docs, shard = [], 0
        while shard < min(shard_bytes, size_bytes - total):
            doc = make_document(rng, sources, names, weights)
            docs.append(doc)
            n = len(doc.encode("utf-8"))
            shard += n + 12  # ~ the JSON wrapping and escapes
            text_bytes += n
        if fmt == "jsonl":
            with open(path, "w", encoding="utf-8") as f:
                for doc in docs:
                    f.write(json.dumps({"text": doc}, ensure_ascii=False))
                    f.write("\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"text": docs}), path, row_group_size=1000)
        total += path.stat().st_size
        n_docs += len(docs)
        files.append(str(path))
    return {"files": files, "shards": len(files), "shard_bytes": total, "text_bytes": text_bytes, "documents": n_docs,
            "generate_s": round(time.perf_counter() - t0, 1)}


# ---------------------------------------------------------------- child processes


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile, VmHWM of a process in KB (empty once it has exited)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def run_child(stage: str, params: dict[str, Any], scratch: Path, label: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one stage in a child process; its result plus wall time, CPU time and peak memory."""
    params = {**params, "result": str(scratch / f"{label}.result.json")}
    pfile = scratch / f"{label}.params.json"
    pfile.write_text(json.dumps(params))
    log_path = scratch / f"{label}.log"
    peak = {"RssAnon": 0, "RssFile": 0, "VmHWM": 0}
    os.sync()  # the previous job's dirty pages are written back before this one is timed
    load = os.getloadavg()[0]
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", stage, str(pfile)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
        while True:  # poll /proc until the child exits; wait4 reaps it with its own rusage
            st = proc_status(proc.pid)
            for k in peak:
                peak[k] = max(peak[k], st.get(k, 0))
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"{label}: child exited with {proc.returncode}; log {log_path}:\n{tail}")
    result = json.loads(Path(params["result"]).read_text())
    # Peak RSS: the child's own VmHWM (its mm after exec). wait4's ru_maxrss is kept beside it, but on Linux it
    # also holds this process's RSS high-water mark at the fork/exec, so it is never below this process's peak.
    hwm = max(result.pop("self_hwm_kb"), peak["VmHWM"])
    result.update(process_wall_s=round(wall, 2), process_cpu_s=round(ru.ru_utime + ru.ru_stime, 2), peak_rss_mb=round(hwm / 1024, 1),
                  peak_anon_mb=round(peak["RssAnon"] / 1024, 1), peak_file_mb=round(peak["RssFile"] / 1024, 1),
                  wait4_maxrss_mb=round(ru.ru_maxrss / 1024, 1), load_avg_1m_at_start=round(load, 2))
    if result.get("seconds"):
        result["cores_used"] = round(result["cpu_s"] / result["seconds"], 2)  # below the threads asked for: the cores were shared
    if "input_bytes" in result and result.get("seconds"):
        result["mb_per_s"] = round(result["input_bytes"] / MB / result["seconds"], 2)
        result["mb_per_cpu_s"] = round(result["input_bytes"] / MB / max(result["cpu_s"], 1e-3), 2)
    return result


class Timer:
    """Wall and CPU seconds (all threads of the process) of a block."""

    def __enter__(self) -> Timer:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0

    def result(self) -> dict[str, float]:
        return {"seconds": round(self.seconds, 2), "cpu_s": round(self.cpu, 2)}


def dataset_spec(files: list[str], fmt: str) -> dict[str, Any]:
    return {"path": "json" if fmt == "jsonl" else "parquet", "name": None, "data_dir": None, "data_files": files,
            "split": "train", "text_field": "text", "revision": None}


def corpus_settings(p: dict[str, Any]) -> Any:
    from featureflow.settings import CorpusSettings, defaults

    extra = {"shuffle_buffer_mb": p["shuffle_buffer_mb"]} if p.get("shuffle_buffer_mb") else {}
    return defaults(CorpusSettings, files=None, dataset=dataset_spec(p["files"], p["format"]), fraction=p["fraction"],
                    filter=p["filter"], **extra)


def child_corpus(p: dict[str, Any]) -> dict[str, Any]:
    from featureflow.data.corpus import prepare_corpus

    if p.get("one_shard_at_a_time"):  # candidate fix, not in the package: see CANDIDATE_SHUFFLE
        import datasets

        shuffle = datasets.IterableDataset.shuffle

        def one_shard(self: Any, *a: Any, **k: Any) -> Any:
            return shuffle(self, *a, **{"max_buffer_input_shards": 1, **k})

        datasets.IterableDataset.shuffle = one_shard
    spec = corpus_settings(p)
    with Timer() as t:
        summary = prepare_corpus(p["name"], {"train": p["train"], "validation": p["validation"]}, p["summary"], spec, p["seed"])
    sel = summary["selection"]
    return {**t.result(), "input_bytes": sum(os.path.getsize(f) for f in p["files"]),
            "documents_read": sel["read"], "documents_kept": sel["kept"], "bytes_kept": sel["kept_bytes"],
            "train_bytes": summary["train"]["bytes"], "validation_bytes": summary["validation"]["bytes"],
            "buffer": sel["buffer"], "stopped": sel["stopped"]}


def child_old_corpus(p: dict[str, Any]) -> dict[str, Any]:
    """The corpus stage as of f3ed4f6 (its module text, loaded from a file) on the same spec."""
    import importlib.util

    spec_mod = importlib.util.spec_from_file_location("old_corpus", p["module"])
    old = importlib.util.module_from_spec(spec_mod)
    spec_mod.loader.exec_module(old)
    spec = corpus_settings(p)
    with Timer() as t:
        summary = old.prepare_corpus(p["name"], {"train": p["train"], "validation": p["validation"]}, p["summary"], spec, p["seed"])
    return {**t.result(), "input_bytes": sum(os.path.getsize(f) for f in p["files"]),
            "documents_read": summary["documents_read"],
            "documents_kept": summary["train"]["documents"] + summary["validation"]["documents"],
            "bytes_kept": summary["train"]["bytes"] + summary["validation"]["bytes"]}


def child_tokenizer(p: dict[str, Any]) -> dict[str, Any]:
    from featureflow.data.tokenizer import build_tokenizer
    from featureflow.settings import TokenizerSettings, defaults

    with Timer() as t:
        meta = build_tokenizer(defaults(TokenizerSettings, kind="mistral"), [], p["out"])
    return {**t.result(), "vocab_size": meta["vocab_size"], "eot_id": meta["eot_id"]}


def child_tokens(p: dict[str, Any]) -> dict[str, Any]:
    from featureflow.data.tokens import tokenize_split

    with Timer() as t:
        counts = tokenize_split(p["text"], p["tok_dir"], p["npy"], p["json"], threads=p["threads"])
    return {**t.result(), "input_bytes": os.path.getsize(p["text"]), "tokens": counts["tokens"],
            "documents": counts["documents"], "chars": counts["chars"], "chars_per_token": counts["chars_per_token"]}


def child_mixture(p: dict[str, Any]) -> dict[str, Any]:
    from featureflow.data.tokens import build_mixture

    with Timer() as t:
        summary = build_mixture(p["files"], "even", p["npy"], p["json"])
    return {**t.result(), "input_bytes": sum(os.path.getsize(f) for f in p["files"].values()),
            "tokens": summary["tokens"], "tokens_per_corpus": summary["tokens_per_corpus"]}


def child_idle(p: dict[str, Any]) -> dict[str, Any]:
    """Only the imports of the jobs: the floor of every job's RSS (and the library versions)."""
    import datasets
    import pyarrow
    import tokenizers

    import featureflow.data.corpus  # noqa: F401
    import featureflow.data.tokens  # noqa: F401

    return {"seconds": 0.0, "cpu_s": 0.0, "versions": {"datasets": datasets.__version__, "pyarrow": pyarrow.__version__,
                                         "tokenizers": tokenizers.__version__, "numpy": np.__version__}}


def child_generate(p: dict[str, Any]) -> dict[str, Any]:
    """The synthetic shards (in a child, so that this process stays small: see `run_child`)."""
    return {"cpu_s": 0.0, **generate(Path(p["folder"]), p["size_bytes"], p["shard_bytes"], p["format"], p["seed"])}


def old_encode(docs: list[str], tokenizer: Any, eot_id: int, dtype: np.dtype, batch_size: int = 512) -> np.ndarray:
    """f3ed4f6's encode_documents (the whole split in memory, batches of 512 documents), without its progress bar."""
    pieces: list[np.ndarray] = []
    eot = np.array([eot_id], dtype=dtype)
    for start in range(0, len(docs), batch_size):
        for enc in tokenizer.encode_batch(docs[start : start + batch_size], add_special_tokens=False):
            pieces.append(np.asarray(enc.ids, dtype=dtype))
            pieces.append(eot)
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)


def child_encode_rate(p: dict[str, Any]) -> dict[str, Any]:
    """Encode loops on the same documents in one process, in turn, `repeats` times each: the previous one
    (f3ed4f6) and today's (`encode_batch_fast`, batches of ~4 MB)."""
    os.environ["RAYON_NUM_THREADS"] = str(p["threads"])
    from featureflow.data.sources import iter_text_documents
    from featureflow.data.tokenizer import load_tokenizer
    from featureflow.data.tokens import batches_by_size, encode_batch, token_dtype

    tokenizer, meta = load_tokenizer(p["tok_dir"])
    eot_id, dtype = meta["eot_id"], token_dtype(meta["vocab_size"])
    docs, n_bytes = [], 0
    for doc in iter_text_documents(p["text"]):
        docs.append(doc)
        n_bytes += len(doc.encode("utf-8"))
        if n_bytes >= p["mb"] * MB:
            break

    loops = {
        "old": lambda: old_encode(docs, tokenizer, eot_id, dtype),
        "new": lambda: np.concatenate([encode_batch(b, tokenizer, eot_id, dtype) for b in batches_by_size(docs)]),
    }
    wall: dict[str, list[float]] = {k: [] for k in loops}
    cpu: dict[str, list[float]] = {k: [] for k in loops}
    ids = {}
    for _ in range(p["repeats"]):
        for name, fn in loops.items():
            if name not in p["loops"]:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            ids[name] = fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    mb = n_bytes / MB
    wall, cpu = {k: v for k, v in wall.items() if v}, {k: v for k, v in cpu.items() if v}
    return {"text_mb": round(mb, 1), "documents": len(docs), "tokens": int(ids["new"].size), "threads": p["threads"],
            "wall_s": {k: [round(s, 2) for s in v] for k, v in wall.items()},
            "cpu_s": {k: [round(s, 2) for s in v] for k, v in cpu.items()},
            "mb_per_s": {k: round(mb / min(v), 2) for k, v in wall.items()},
            "mb_per_cpu_s": {k: round(mb / min(v), 2) for k, v in cpu.items()},
            "identical_ids": {k: bool(np.array_equal(ids["old"], v)) for k, v in ids.items() if k != "old"} if "old" in ids else None}


CHILDREN = {"generate": child_generate, "corpus": child_corpus, "old_corpus": child_old_corpus, "tokenizer": child_tokenizer, "tokens": child_tokens,
            "mixture": child_mixture, "idle": child_idle, "encode_rate": child_encode_rate}


def child_main(stage: str, params_file: str) -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    p = json.loads(Path(params_file).read_text())
    result = CHILDREN[stage](p)
    result["self_hwm_kb"] = proc_status(os.getpid()).get("VmHWM", 0)
    Path(p["result"]).write_text(json.dumps(result))


# ---------------------------------------------------------------- the benchmark


def run_size(gb: float, args: argparse.Namespace, scratch: Path, tok_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    tag = f"{gb:g}gb"
    folder = scratch / tag
    print(f"[{tag}] generating {args.format} shards ...", flush=True)
    data = run_child("generate", {"folder": str(folder / "shards"), "size_bytes": int(gb * GB), "shard_bytes": int(args.shard_mb * MB),
                                  "format": args.format, "seed": args.seed}, scratch, f"{tag}_generate", env)
    data = {k: data[k] for k in ("files", "shards", "shard_bytes", "text_bytes", "documents", "generate_s")}
    print(f"[{tag}] {data['shards']} shards, {data['shard_bytes'] / MB:.0f} MB, {data['documents']} documents "
          f"in {data['generate_s']} s", flush=True)
    files = data.pop("files")
    common = {"files": files, "format": args.format, "fraction": args.fraction, "filter": args.filter, "seed": args.seed,
              "shuffle_buffer_mb": args.shuffle_buffer_mb, "name": "python"}
    corpus_dir = folder / "corpus"
    texts = {"train": str(corpus_dir / "train.txt"), "validation": str(corpus_dir / "validation.txt")}
    stages: dict[str, Any] = {}
    stages["corpus"] = run_child("corpus", {**common, **texts, "summary": str(corpus_dir / "split.json")}, scratch,
                                 f"{tag}_corpus", env)
    print(f"[{tag}] corpus: {stages['corpus']}", flush=True)
    tok_out = folder / "tokens"
    tok_out.mkdir(parents=True, exist_ok=True)
    npy, counts = tok_out / "train.npy", tok_out / "train.json"
    stages["tokens"] = run_child("tokens", {"text": texts["train"], "tok_dir": str(tok_dir), "npy": str(npy),
                                            "json": str(counts), "threads": args.threads}, scratch, f"{tag}_tokens", env)
    print(f"[{tag}] tokens: {stages['tokens']}", flush=True)
    copy_npy = tok_out / "train_b.npy"  # the second corpus of the mixture: a copy (a second file, not the same pages)
    shutil.copyfile(npy, copy_npy)
    shutil.copyfile(counts, copy_npy.with_suffix(".json"))
    stages["mixture"] = run_child("mixture", {"files": {"a": str(npy), "b": str(copy_npy)}, "npy": str(folder / "mixture.npy"),
                                              "json": str(folder / "mixture.json")}, scratch, f"{tag}_mixture", env)
    print(f"[{tag}] mixture: {stages['mixture']}", flush=True)
    out = {"gb": gb, **data, "stages": stages}
    if args.candidates:
        cand_dir = folder / "corpus_candidate"
        out["candidate_corpus"] = run_child("corpus", {**common, "one_shard_at_a_time": True, "train": str(cand_dir / "train.txt"),
                                                       "validation": str(cand_dir / "validation.txt"),
                                                       "summary": str(cand_dir / "split.json")}, scratch, f"{tag}_corpus_candidate", env)
        print(f"[{tag}] {CANDIDATE_SHUFFLE}: {out['candidate_corpus']}", flush=True)
    if args.old_corpus and gb == min(args.sizes):
        module = scratch / "old_corpus_f3ed4f6.py"
        module.write_text(subprocess.run(["git", "-C", str(REPO), "show", f"{OLD_COMMIT}:src/featureflow/data/corpus.py"],
                                         check=True, capture_output=True, text=True).stdout)
        old_dir = folder / "old_corpus"
        old_dir.mkdir(exist_ok=True)
        out["old_corpus"] = run_child("old_corpus", {**common, "module": str(module), "train": str(old_dir / "train.txt"),
                                                     "validation": str(old_dir / "validation.txt"),
                                                     "summary": str(old_dir / "split.json")}, scratch, f"{tag}_old_corpus", env)
        out["old_corpus"]["commit"] = OLD_COMMIT
        print(f"[{tag}] old corpus reader ({OLD_COMMIT}): {out['old_corpus']}", flush=True)
        shutil.rmtree(scratch / "hf" / "datasets", ignore_errors=True)  # its arrow cache
    shutil.rmtree(folder / "shards")  # the next size's shards need the room more than these
    return out


def targets(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for s in sizes:
        for stage in STAGES:
            r = s["stages"][stage]
            rows.append({"target": f"peak RSS < {RSS_LIMIT_MB} MB", "size_gb": s["gb"], "stage": stage,
                         "value": r["peak_rss_mb"], "pass": r["peak_rss_mb"] < RSS_LIMIT_MB})
    if len(sizes) > 1:
        small, big = sizes[0], sizes[-1]
        for stage in STAGES:
            a, b = small["stages"][stage], big["stages"][stage]
            rows.append({"target": f"peak RSS at {big['gb']:g} GB <= {RSS_GROWTH}x at {small['gb']:g} GB", "stage": stage,
                         "value": round(b["peak_rss_mb"] / a["peak_rss_mb"], 3),
                         "pass": b["peak_rss_mb"] <= RSS_GROWTH * a["peak_rss_mb"],
                         "anon_ratio": round(b["peak_anon_mb"] / max(a["peak_anon_mb"], 1e-9), 3)})
            cpu = (b["cpu_s"] / b["input_bytes"]) / (a["cpu_s"] / a["input_bytes"])
            wall = (b["seconds"] / b["input_bytes"]) / (a["seconds"] / a["input_bytes"])
            rows.append({"target": f"time linear in size (CPU seconds per MB at {big['gb']:g} GB <= {LINEAR_TOLERANCE}x "
                                   f"at {small['gb']:g} GB)", "stage": stage, "value": round(cpu, 3),
                         "pass": cpu <= LINEAR_TOLERANCE, "wall_ratio": round(wall, 3)})
    for s in sizes:
        r = s["stages"]["tokens"]
        rows.append({"target": f"tokenisation >= {TOKENS_MB_S} MB/s (Mistral, 2 threads)", "size_gb": s["gb"], "stage": "tokens",
                     "value": r["mb_per_s"], "pass": r["mb_per_s"] >= TOKENS_MB_S, "mb_per_cpu_s": r["mb_per_cpu_s"]})
    return rows


def markdown(result: dict[str, Any]) -> str:
    lines = ["| size | stage | input MB | seconds | MB/s | CPU s | cores used | MB per CPU-s | peak RSS MB | anon MB | file MB | kept |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in result["sizes"]:
        extra = [(label, s[k]) for k, label in (("candidate_corpus", CANDIDATE_SHUFFLE), ("old_corpus", f"corpus ({OLD_COMMIT})"))
                 if k in s]
        for stage, r in [*s["stages"].items(), *extra]:
            if stage.startswith("corpus"):
                kept = f"{r['documents_kept']} of {r['documents_read']} docs, {r['bytes_kept'] / MB:.0f} MB"
            else:
                kept = f"{r['tokens'] / 1e6:.1f}M tokens"
            lines.append(f"| {s['gb']:g} GB | {stage} | {r['input_bytes'] / MB:.0f} | {r['seconds']:.1f} | {r['mb_per_s']:.1f} | "
                         f"{r['cpu_s']:.0f} | {r.get('cores_used', 0):.2f} | {r['mb_per_cpu_s']:.1f} | {r['peak_rss_mb']:.0f} | "
                         f"{r['peak_anon_mb']:.0f} | {r['peak_file_mb']:.0f} | {kept} |")
    e = result.get("encode_rate")
    if e:
        lines += ["", f"Encode rate on {e['text_mb']} MB of the same text, RAYON_NUM_THREADS={e['threads']} (best of "
                      f"{len(e['wall_s']['old'])}; identical ids: {e['identical_ids']}):", "",
                  "| loop | MB/s | MB per CPU-second |", "|---|---:|---:|"]
        names = {"old": f"previous ({OLD_COMMIT}): all documents, batches of 512", "new": "today: batches of ~4 MB"}
        for k, label in names.items():
            lines.append(f"| {label} | {e['mb_per_s'][k]} | {e['mb_per_cpu_s'][k]} |")
        one = result.get("encode_rate_1_thread")
        if one:
            lines.append(f"| today, RAYON_NUM_THREADS=1 | {one['mb_per_s']['new']} | {one['mb_per_cpu_s']['new']} |")
    lines += ["", "| target | stage | size | value | pass | beside |", "|---|---|---|---:|---|---|"]
    for t in result["targets"]:
        beside = ", ".join(f"{k}: {t[k]}" for k in ("anon_ratio", "wall_ratio", "mb_per_cpu_s") if k in t)
        lines.append(f"| {t['target']} | {t['stage']} | {t.get('size_gb', '')} | {t['value']} | {'yes' if t['pass'] else 'NO'} | {beside} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1, 4], help="corpus sizes in GB of shards (default 1 4)")
    ap.add_argument("--quick", action="store_true", help="sizes 0.05 and 0.2 GB and a shorter encode-rate run, to try it")
    ap.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    ap.add_argument("--shard-mb", type=float, default=64)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--filter", choices=["none", "code"], default="none", help="corpora.<name>.filter (paper config: none)")
    ap.add_argument("--shuffle-buffer-mb", type=float, default=None, help="default: the schema's")
    ap.add_argument("--threads", type=int, default=2, help="tokenize_split threads (the tokenize job's default)")
    ap.add_argument("--rate-mb", type=float, default=64, help="MB of text for the old-vs-new encode rate")
    ap.add_argument("--no-old-corpus", dest="old_corpus", action="store_false",
                    help="skip the previous corpus reader at the smallest size")
    ap.add_argument("--no-candidates", dest="candidates", action="store_false",
                    help="skip the corpus job with the candidate shuffle fix")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/featureflow_corpus_bench"))
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/corpus_scale.json (--quick: _quick)")
    ap.add_argument("--child", nargs=2, metavar=("STAGE", "PARAMS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(*args.child)
        return
    if args.quick:
        args.sizes, args.rate_mb = [0.05, 0.2], min(args.rate_mb, 8)
    args.sizes = sorted(args.sizes)
    out_path = args.out or HERE / "results" / ("corpus_scale_quick.json" if args.quick else "corpus_scale.json")

    scratch = args.scratch
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    env = {**os.environ, "HF_HOME": str(scratch / "hf"), "HF_DATASETS_CACHE": str(scratch / "hf" / "datasets"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("RAYON_NUM_THREADS", None)
    result: dict[str, Any] = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_start": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"sizes_gb": args.sizes, "format": args.format, "shard_mb": args.shard_mb, "fraction": args.fraction,
                     "filter": args.filter, "shuffle_buffer_mb": args.shuffle_buffer_mb or "schema default", "cap": None,
                     "threads": args.threads, "seed": args.seed, "mixture": "even, the train token file and a copy of it",
                     "note": "seconds: the stage function in its child (imports excluded); peak_rss_mb: ru_maxrss from wait4; "
                             "peak_anon_mb / peak_file_mb: polled /proc RssAnon / RssFile (file: mapped page cache)"},
    }
    try:
        tok_dir = scratch / "tokenizer"
        result["tokenizer"] = run_child("tokenizer", {"out": str(tok_dir)}, scratch, "tokenizer", env)
        result["idle_child"] = run_child("idle", {}, scratch, "idle", env)
        result["machine"].update(result["idle_child"].pop("versions"))
        print(f"idle child (imports only): {result['idle_child']['peak_rss_mb']} MB", flush=True)
        result["sizes"] = []
        for gb in args.sizes:
            result["sizes"].append(run_size(gb, args, scratch, tok_dir, env))
        text = scratch / f"{args.sizes[-1]:g}gb" / "corpus" / "train.txt"
        print(f"encode rate, old vs new, on {args.rate_mb:g} MB of {text} ...", flush=True)
        rate = {"text": str(text), "tok_dir": str(tok_dir), "mb": args.rate_mb, "repeats": 2}
        result["encode_rate"] = run_child("encode_rate", {**rate, "threads": args.threads, "loops": ["old", "new"]},
                                          scratch, "encode_rate", env)
        # today's loop on one thread (RAYON_NUM_THREADS is read once per process): how much the second thread adds
        result["encode_rate_1_thread"] = run_child("encode_rate", {**rate, "threads": 1, "loops": ["new"]}, scratch, "encode_rate_1", env)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    result["targets"] = targets(result["sizes"])
    result["all_targets_pass"] = all(t["pass"] for t in result["targets"])
    cands = [s["candidate_corpus"] for s in result["sizes"] if "candidate_corpus" in s]
    if len(cands) > 1:  # not a target: what the candidate fix would give
        a, b = cands[0], cands[-1]
        result["candidate_corpus_scaling"] = {
            "what": CANDIDATE_SHUFFLE, "peak_rss_ratio": round(b["peak_rss_mb"] / a["peak_rss_mb"], 3),
            "cpu_s_per_mb_ratio": round((b["cpu_s"] / b["input_bytes"]) / (a["cpu_s"] / a["input_bytes"]), 3),
            "cpu_s_vs_today": [round(c["cpu_s"] / s["stages"]["corpus"]["cpu_s"], 3) for c, s in zip(cands, result["sizes"], strict=True)],
            "peak_rss_mb_vs_today": [[c["peak_rss_mb"], s["stages"]["corpus"]["peak_rss_mb"]] for c, s in zip(cands, result["sizes"], strict=True)]}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\nwrote {out_path}")


if __name__ == "__main__":
    main()
