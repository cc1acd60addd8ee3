"""Typed, frozen settings of every stage, built from a validated config block.

The schema (``workflow/schemas/config.schema.yaml``) is the only source of defaults: validation
fills them in, and these types have none of their own. ``from_block`` refuses a block that lacks a
field, so a type and the schema cannot drift apart silently (tests/test_settings.py also compares
every type with its schema block).

Settings cross the rule -> script boundary as plain dicts (``asdict``), which Snakemake compares to
decide what to rerun; scripts turn them back into these types with ``from_block``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

T = TypeVar("T")
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class CorpusSettings:
    """`corpora.<name>`: where a corpus comes from and how it is cut and split."""

    files: tuple[str, ...] | None
    dataset: dict[str, Any] | None
    doc_separator: str
    fraction: float
    max_documents: int | None
    max_bytes: int | None
    max_tokens: int | None
    bytes_per_token: float
    shuffle_buffer_mb: float
    validation_fraction: float
    filter: str


@dataclass(frozen=True)
class TokenizerSettings:
    """`tokenizer`: a trained byte-level BPE or the Mistral-7B-v0.1 tokenizer."""

    kind: str
    vocab_size: int
    min_frequency: int
    train_on: tuple[str, ...] | None


@dataclass(frozen=True)
class Architecture:
    """`lm.architecture`: the shape shared by every model of the lineage."""

    d_model: int
    d_mlp: int
    n_heads: int
    n_kv_heads: int | None
    n_layers: int
    block_size: int
    rope_theta: float


@dataclass(frozen=True)
class TrainSettings:
    """`lm.scratch` / `lm.finetune`: the optimiser and the training budget."""

    epochs: float
    tokens: int | None  # overrides epochs
    batch_size: int
    lr: float
    min_lr_ratio: float
    warmup_steps: int
    weight_decay: float
    betas: tuple[float, float]
    grad_clip: float | None


@dataclass(frozen=True)
class LMSettings:
    """`lm`: the language models: architecture, training of both kinds, checkpoints, evaluation."""

    architecture: Architecture
    context_size: int | None  # resolved by the plan (featureflow.context): an int in a plan's config
    scratch: TrainSettings
    finetune: TrainSettings
    eval_tokens: int | None
    eval_batch_size: int
    checkpoint_every: int
    keep_checkpoints: bool
    log_every: int

    def train_job(self, fine_tune: bool) -> TrainJob:
        """What one training job needs: the shape, its kind's optimiser settings, checkpoints, logging."""
        return TrainJob(self.architecture, self.finetune if fine_tune else self.scratch,
                        self.checkpoint_every, self.keep_checkpoints, self.log_every,
                        self.context_size or self.architecture.block_size)


@dataclass(frozen=True)
class TrainJob:
    """The settings of one `train` job (a view of `lm`: evaluation settings do not retrain a model)."""

    architecture: Architecture
    schedule: TrainSettings
    checkpoint_every: int
    keep_checkpoints: bool
    log_every: int
    context_size: int | None = None  # tokens per training block (`lm.context_size`; None: architecture.block_size);
    # a scratch model's positions are architecture.block_size either way


@dataclass(frozen=True)
class MergeSettings:
    """`merge`: the t sweep of merged models (Figure 5)."""

    grid_step: float
    refine_step: float
    eval_tokens: int | None


@dataclass(frozen=True)
class SAESettings:
    """`sae` without `eval_tokens` (read by sae_eval alone, so that it never retrains an SAE) and `seeds` (the plan's
    `sae_seed`, the jobs' `seed`): the keys every
    architecture shares, and in `options` the chosen architecture's own (featureflow.sae.architectures reads
    them into its config; `sae_settings` splits a config block so)."""

    hook: str
    architecture: str  # featureflow.sae.architectures.ARCHITECTURES
    expansion_factor: int
    tokens: int
    context_size: int
    batch_blocks: int
    lr: float
    betas: tuple[float, float]
    lr_decay_fraction: float
    normalize: str  # "none" | "unit_rms"
    subtract_mean: bool
    buffer_tokens: int
    dead_window_tokens: int
    resample_dead_every: int  # steps between resamplings of dead features; 0 = off (the paper)
    bf16: bool
    checkpoint_every: int
    log_every: int
    keep_checkpoints: bool
    options: Mapping[str, Any]  # the architecture's own keys (standard: l1_coefficient, l1_warmup_fraction)

    def recipe(self) -> dict[str, Any]:
        """The fields that decide the trained weights (a resumed run must match them), options flat among them."""
        run_only = {"checkpoint_every", "log_every", "keep_checkpoints", "options"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in run_only} | dict(self.options)


@dataclass(frozen=True)
class ActsSettings:
    """`acts`: the common token sample and the feature-activation jobs."""

    tokens: int
    context_size: int
    batch_tokens: int


@dataclass(frozen=True)
class CorrelationSettings:
    """`correlation`: feature matching along every edge (threshold-free)."""

    method: str
    top_k: int
    engine: str


@dataclass(frozen=True)
class CaseStudySettings:
    """`analysis.case_studies`: which hypotheses the two case studies use, and how many contexts they show."""

    persisting: str
    disappearing: str
    contexts: int


@dataclass(frozen=True)
class AnalysisSettings:
    """`analysis`: per-feature statistics, LLR hypotheses and the case studies."""

    top_contexts: int
    top_tokens: int
    min_token_count: int
    histogram_bins: int
    browser_contexts: int
    browser_window: int
    hypotheses: dict[str, list[str]]
    case_studies: CaseStudySettings

    def feature_stats(self) -> FeatureStatsSettings:
        """The `feature_stats` jobs' view: the browser's and case studies' settings recompute no statistics."""
        return FeatureStatsSettings(self.top_contexts, self.top_tokens, self.min_token_count, self.histogram_bins,
                                    self.hypotheses)

    def browser(self) -> BrowserSettings:
        """The `browser` job's view: which LLR columns it shows and how much context per feature."""
        return BrowserSettings(tuple(self.hypotheses), self.browser_contexts, self.browser_window)


@dataclass(frozen=True)
class FeatureStatsSettings:
    """Per-feature statistics on the common sample and the LLR hypotheses (a view of `analysis`)."""

    top_contexts: int
    top_tokens: int
    min_token_count: int
    histogram_bins: int
    hypotheses: dict[str, list[str]]


@dataclass(frozen=True)
class BrowserSettings:
    """The feature browser's view of `analysis`: hypothesis names (LLR columns), contexts per feature, tokens around each."""

    hypotheses: tuple[str, ...]
    contexts: int
    window: int


@dataclass(frozen=True)
class InterpFeatures:
    """`interp.features`: which features are explained."""

    persisting_chain: bool
    random_others: int
    max_per_model: int


@dataclass(frozen=True)
class InterpRecords:
    """`interp.records`: contexts per feature shown for the explanation and held out for the simulation."""

    explain_top: int
    explain_random: int
    simulate_top: int
    simulate_random: int


@dataclass(frozen=True)
class InterpSettings:
    """`interp`: the OpenAI-compatible endpoint, prompts' sizes, cost control, and the feature selection."""

    enabled: bool
    base_url: str | None
    model: str
    api_key_env: str
    temperature: float
    json_mode: bool
    max_tokens_explain: int
    max_tokens_simulate: int
    timeout_s: float
    max_retries: int
    backoff_s: float
    concurrency: int
    budget_usd: float
    chars_per_token: float
    prices: dict[str, dict[str, float]]
    features: InterpFeatures
    records: InterpRecords

    # How a run talks to the endpoint, not what it asks: changing them reruns nothing (the
    # request cache would make a rerun free anyway, but its jobs would still be scheduled).
    RUN_ONLY: ClassVar[tuple[str, ...]] = ("concurrency", "timeout_s", "max_retries", "backoff_s")

    def cost(self) -> InterpCost:
        """What the cost estimate depends on: the selection, the prompts' sizes and the prices."""
        return InterpCost(self.enabled, self.base_url, self.model, self.chars_per_token, self.max_tokens_explain,
                          self.max_tokens_simulate, self.prices, self.features, self.records)


@dataclass(frozen=True)
class InterpCost:
    """The `interp_estimate` job's view of `interp`: which features, how large their prompts are, at what price."""

    enabled: bool
    base_url: str | None
    model: str
    chars_per_token: float
    max_tokens_explain: int
    max_tokens_simulate: int
    prices: dict[str, dict[str, float]]
    features: InterpFeatures
    records: InterpRecords


@dataclass(frozen=True)
class JobClass:
    """`resources.<class>`: what one kind of job asks for (threads, memory, minutes, GPUs) and runs on."""

    device: Device
    compile: bool | str  # "auto" | True | False
    threads: int
    mem_mb: int
    runtime: int
    gpus: int
    gpu_model: str | None
    partition: str | None

    @property
    def resources(self) -> dict[str, int | str]:
        """Snakemake `resources:` of a job of this class, named as the SLURM executor reads them.

        A GPU job asks for its CPUs per GPU (`--cpus-per-gpu`), a CPU job for its threads
        (`--cpus-per-task`); both ask for memory and runtime, and the partition when one is set.
        Local runs ignore all but `mem_mb` and `runtime` (and `gpu` when `--resources gpu=N` is given).
        """
        res: dict[str, int | str] = {"mem_mb": self.mem_mb, "runtime": self.runtime, "gpu": self.gpus}
        if self.gpus:
            res["cpus_per_gpu"] = max(1, self.threads // self.gpus)
            if self.gpu_model:
                res["gpu_model"] = self.gpu_model
        else:
            res["cpus_per_task"] = self.threads
        if self.partition:
            res["slurm_partition"] = self.partition
        return res


@dataclass(frozen=True)
class Resources:
    """What a stage function is given to run on: the torch device choice, its CPU threads,
    whether to compile the training step ("auto": on CUDA only; see `runtime.use_compile`), and
    whether training jobs also write TensorBoard event files (the config's `tensorboard`), and the
    job class's memory in MB (`mem_mb`; None outside a Snakemake job), which the SAE jobs check
    their estimated peak against."""

    device: Device
    threads: int
    compile: bool | str
    tensorboard: bool
    mem_mb: int | None = None

    @classmethod
    def local(cls, device: Device, threads: int) -> Resources:
        """Resources outside a Snakemake job (tests, benchmarks, notebooks), with the schema's defaults
        for compiling (`resources.train.compile`) and TensorBoard."""
        cfg = _validated_minimal_config()
        return cls(device=device, threads=threads, compile=cfg["resources"]["train"]["compile"], tensorboard=cfg["tensorboard"])


# Each settings type and the config block it is built from (tests compare them with the schema).
BLOCKS: dict[type, str] = {
    CorpusSettings: "corpora.*",
    TokenizerSettings: "tokenizer",
    Architecture: "lm.architecture",
    TrainSettings: "lm.scratch",
    LMSettings: "lm",
    MergeSettings: "merge",
    SAESettings: "sae",
    ActsSettings: "acts",
    CorrelationSettings: "correlation",
    AnalysisSettings: "analysis",
    CaseStudySettings: "analysis.case_studies",
    InterpSettings: "interp",
    InterpFeatures: "interp.features",
    InterpRecords: "interp.records",
    JobClass: "resources.*",
}


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _convert(hint: Any, value: Any) -> Any:
    """Turn YAML values into the field's type: nested blocks into settings types, lists into tuples."""
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_block(hint, value)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def from_block(cls: type[T], block: Mapping[str, Any]) -> T:
    """Build settings type `cls` from a validated config block (or a dict made by `asdict`).

    Every field must be present, except optional ones (typed `... | None`) that the schema leaves
    out; unknown keys are an error.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(block) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown settings {', '.join(unknown)}")
    missing = [n for n in names if n not in block and not _optional(hints[n])]
    if missing:
        raise ValueError(f"{cls.__name__}: missing settings {', '.join(missing)} (was the config validated?)")
    return cls(**{n: _convert(hints[n], block.get(n)) for n in names})


# Keys of the `sae` block outside SAESettings: read by one rule (eval_tokens: sae_eval) or by the plan (seeds:
# each SAE job's `seed`), so that changing them reruns no SAE through its settings.
SAE_BLOCK_ONLY = frozenset({"eval_tokens", "seeds"})


def sae_seed(seed: int, model: str, seeds: str) -> int:
    """The seed of `model`'s SAE from `seed` under `sae.seeds`: `shared` gives `seed` itself (the paper's code);
    `per_model` gives `seed XOR zlib.crc32(model.encode("utf-8"))`. CRC-32 is the same on every run and machine
    (never Python's salted hash()); for one model the map is one-to-one in `seed`, so the run's seed and the seed
    ceiling's `controls.sae_seed.seed` (which must differ) never give a model's two SAEs one seed."""
    if seeds == "shared":
        return int(seed)
    if seeds == "per_model":
        return int(seed) ^ zlib.crc32(model.encode("utf-8"))
    raise ValueError(f"sae.seeds: {seeds!r} is neither 'shared' nor 'per_model'")


def sae_settings(block: Mapping[str, Any]) -> SAESettings:
    """SAESettings of a validated `sae` block (without SAE_BLOCK_ONLY's keys): the shared keys as fields, the others as `options`."""
    shared = {f.name for f in dataclasses.fields(SAESettings)} - {"options"}
    return from_block(SAESettings, {k: v for k, v in block.items() if k in shared}
                      | {"options": {k: v for k, v in block.items() if k not in shared}})


def _validated_minimal_config(sae_architecture: str | None = None) -> dict[str, Any]:
    """The smallest valid config with every default of the schema filled in (the `sae` block's for
    `sae_architecture`, None: the default one)."""
    from featureflow.config import SCHEMA_PATH, validate_config

    minimal = {"corpora": {"text": {"files": ["text.txt"]}}, "models": {"model": {"train_on": ["text"]}}}
    if sae_architecture is not None:
        minimal["sae"] = {"architecture": sae_architecture}
    return validate_config(minimal, SCHEMA_PATH)


def defaults(cls: type[T], **overrides: Any) -> T:
    """Settings type `cls` with the schema's defaults and some `overrides` (scripts, benchmarks, tests).

    A fine-tune's `TrainSettings` default to `lm.scratch`; ask for `lm.finetune` values explicitly.
    """
    node: Any = _validated_minimal_config(overrides.get("architecture") if cls is SAESettings else None)
    path = BLOCKS[cls].replace("corpora.*", "corpora.text").replace("resources.*", "resources.train")
    for key in path.split("."):
        node = node[key]
    if cls is SAESettings:
        return sae_settings({k: v for k, v in {**node, **overrides}.items() if k not in SAE_BLOCK_ONLY})
    block = {k: v for k, v in node.items() if k in {f.name for f in dataclasses.fields(cls)}}
    return from_block(cls, {**block, **overrides})


def as_params(settings: Any, without: Iterable[str] = ()) -> dict[str, Any]:
    """Plain-data form of a settings object, for a rule's `params:` (what Snakemake compares to
    decide a rerun); `without` leaves out fields that change no output (see `featureflow.stage.rule_settings`)."""
    skip = set(without)
    return {k: v for k, v in dataclasses.asdict(settings).items() if k not in skip}
