"""Tokenizer stage: train a byte-level BPE, load the Mistral-7B-v0.1 tokenizer offline, or take the
tokenizer of the lineage's pretrained models (which must all share it).

Output (a Hugging Face tokenizer folder that every model folder later copies)::

    results/data/tokenizer/
        tokenizer.json, tokenizer_config.json, special_tokens_map.json (HF format)
        tokenizer_meta.json   kind, vocab size, end-of-text token and id, source checksum
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featureflow.config import ConfigError
from featureflow.paths import TOKENIZER_JSON, TOKENIZER_META
from featureflow.settings import TokenizerSettings

if TYPE_CHECKING:  # transformers is slow to import; stages that only encode do not need it
    from transformers import PreTrainedTokenizerFast

log = logging.getLogger(__name__)

BPE_EOT = "<|endoftext|>"
MISTRAL_EOT = "</s>"
# The Mistral-7B-v0.1 SentencePiece model as shipped inside the mistral-common wheel (Apache-2.0).
MISTRAL_WHEEL_FILE = "data/tokenizer.model.v1"
MISTRAL_SHA256 = "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE (GPT-2 style) with one special token, the end-of-text marker."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[BPE_EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=BPE_EOT, bos_token=BPE_EOT, unk_token=None)


def mistral_model_file() -> Path:
    """Path of the Mistral SentencePiece model inside the installed mistral-common package."""
    spec = find_spec("mistral_common")  # locates the package without importing it (its deps are not needed)
    if spec is None or spec.origin is None:
        raise FileNotFoundError("tokenizer.kind 'mistral' needs the mistral-common wheel: pip install --no-deps mistral-common==1.13.1")
    path = Path(spec.origin).parent / MISTRAL_WHEEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found in the installed mistral-common; pin mistral-common==1.13.1")
    return path


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_mistral() -> PreTrainedTokenizerFast:
    """The Mistral-7B-v0.1 tokenizer (vocab 32000, </s> = 2) built from the wheel's SentencePiece file."""
    import shutil
    import tempfile

    from transformers import LlamaTokenizer

    path = mistral_model_file()
    digest = sha256_file(path)
    if digest != MISTRAL_SHA256:
        raise ValueError(f"{path}: sha256 {digest} is not the Mistral-7B-v0.1 tokenizer ({MISTRAL_SHA256})")
    with tempfile.TemporaryDirectory() as tmp:  # from_pretrained converts a folder's tokenizer.model
        shutil.copy(path, Path(tmp) / "tokenizer.model")
        return LlamaTokenizer.from_pretrained(tmp, add_bos_token=False, add_eos_token=False)


def build_tokenizer(cfg: TokenizerSettings, train_texts: list[str | Path], out_dir: str | Path) -> dict[str, Any]:
    """Build the tokenizer `cfg` describes (the config's `tokenizer` block) and save it to `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.kind == "bpe":
        from featureflow.data.sources import iter_text_documents

        def texts() -> Iterable[str]:
            for path in train_texts:
                yield from iter_text_documents(path)

        tok, eot, source = train_bpe(texts(), cfg.vocab_size, cfg.min_frequency), BPE_EOT, "trained"
    else:
        tok, eot, source = load_mistral(), MISTRAL_EOT, f"mistral-common {MISTRAL_WHEEL_FILE} sha256:{MISTRAL_SHA256}"
    tok.save_pretrained(out)
    meta = {
        "kind": cfg.kind,
        "vocab_size": len(tok),
        "eot_token": eot,
        "eot_id": tok.convert_tokens_to_ids(eot),
        "source": source,
        "trained_on": [str(p) for p in train_texts] if cfg.kind == "bpe" else [],
    }
    (out / TOKENIZER_META).write_text(json.dumps(meta, indent=2) + "\n")
    log.info("tokenizer %s: vocab %d, eot %r = %d", cfg.kind, meta["vocab_size"], eot, meta["eot_id"])
    return meta


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).exists() for name in (TOKENIZER_JSON, "tokenizer_config.json", "vocab.json", "tokenizer.model"))


def tokenizer_from_models(model_dirs: dict[str, str | Path], fallback: TokenizerSettings | None, out_dir: str | Path) -> dict[str, Any]:
    """The tokenizer of the pretrained models in `model_dirs` (name -> model folder), copied to `out_dir`.

    Models whose tokenizers differ (vocabulary or end-of-text token) are refused, naming both. When
    no folder ships a tokenizer, `fallback` (the `tokenizer` block; `mistral` for the paper's
    models) is built instead. Either way every model's embedding must cover the vocabulary.
    """
    import shutil

    from transformers import AutoConfig, AutoTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shipped = {name: Path(folder) for name, folder in model_dirs.items() if _has_tokenizer(Path(folder))}
    if not shipped:
        if fallback is None or fallback.kind != "mistral":
            raise ConfigError(f"config key 'tokenizer.kind': the pretrained models ({', '.join(model_dirs)}) ship no tokenizer; "
                              "set the one they were trained with (mistral)")
        meta = build_tokenizer(fallback, [], out)
    else:
        loaded = {name: AutoTokenizer.from_pretrained(str(folder)) for name, folder in shipped.items()}
        (first, tok), *others = loaded.items()
        for name, other in others:
            if other.get_vocab() != tok.get_vocab() or other.eos_token != tok.eos_token:
                raise ConfigError(f"config key 'models': pretrained models '{first}' and '{name}' have different tokenizers "
                                  f"(vocab {len(tok)} vs {len(other)}, eos {tok.eos_token!r} vs {other.eos_token!r}); one lineage "
                                  "compares features on the same tokens, so its models must share one tokenizer")
        for file in shipped[first].iterdir():  # the model's own files: a fine-tune's parent check compares bytes
            if file.name.startswith(("tokenizer", "special_tokens")) or file.name in ("vocab.json", "merges.txt"):
                shutil.copy(file, out / file.name)
        if not (out / TOKENIZER_JSON).exists():
            tok.save_pretrained(out)
        meta = {"kind": "pretrained", "vocab_size": len(tok), "eot_token": tok.eos_token, "eot_id": tok.eos_token_id,
                "source": f"pretrained model '{first}'", "trained_on": [], "models": sorted(loaded)}
        (out / TOKENIZER_META).write_text(json.dumps(meta, indent=2) + "\n")
    for name, folder in model_dirs.items():
        vocab = AutoConfig.from_pretrained(str(folder)).vocab_size
        if vocab < meta["vocab_size"]:
            raise ConfigError(f"config key 'models.{name}.pretrained': its embedding has {vocab} tokens, fewer than the "
                              f"lineage's tokenizer ({meta['vocab_size']}, {meta['source']})")
    log.info("tokenizer of pretrained %s: %s, vocab %d, eot %r = %d", ", ".join(model_dirs), meta["source"],
             meta["vocab_size"], meta["eot_token"], meta["eot_id"])
    return meta


def load_tokenizer(tok_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load the fast `tokenizers.Tokenizer` of a folder written by `build_tokenizer`, with its metadata.

    The plain `tokenizers` object encodes exactly like the transformers wrapper (tested) and
    imports in a fraction of the time, which matters for the many small token jobs.
    """
    from tokenizers import Tokenizer

    meta = json.loads((Path(tok_dir) / TOKENIZER_META).read_text())
    return Tokenizer.from_file(str(Path(tok_dir) / TOKENIZER_JSON)), meta
