"""The plan's typed settings: one accessor per config block or scalar, so that rules and stages never
read the raw config."""

from __future__ import annotations

from featureflow.settings import (
    SAE_BLOCK_ONLY,
    ActsSettings,
    AnalysisSettings,
    CorpusSettings,
    CorrelationSettings,
    InterpSettings,
    JobClass,
    LMSettings,
    MergeSettings,
    SAESettings,
    TokenizerSettings,
    TrainJob,
    from_block,
    sae_seed,
    sae_settings,
)


class SettingsAccess:
    """Typed views of the validated config (`self.config`) and the lineage's per-model settings."""

    @property
    def seed(self) -> int:
        """The run's seed (`seed`): every random choice of every stage derives from it."""
        return int(self.config["seed"])

    @property
    def threshold(self) -> float | str:
        """The correlation above which a feature persists along an edge (`threshold`): a number, or
        `null-<rate>`, which classify resolves from the edges' shuffle nulls."""
        value = self.config["threshold"]
        return value if isinstance(value, str) else float(value)

    @property
    def threshold_from_null(self) -> bool:
        return isinstance(self.threshold, str)

    @property
    def criterion(self) -> str:
        """What classify calls the same feature (`criterion`; featureflow.flow.matching)."""
        return str(self.config["criterion"])

    def model_seed(self, model: str) -> int:
        """The training seed of `model`: its own `seed` key, else the run's."""
        own = self.lineage.models[model].seed
        return self.seed if own is None else own

    @property
    def data_cache(self) -> str | None:
        """Where hub datasets are cached (`data_cache`; None: the `datasets` library's own cache)."""
        return self.config["data_cache"]

    @property
    def png(self) -> bool:
        """Whether figures are also written as PNG (`figures.png`); their HTML is always written."""
        return bool(self.config["figures"]["png"])

    def figure_files(self, html: str, png: str, **wildcards: str) -> list[str]:
        """A figure's files: its HTML, and its PNG when `figures.png` is on (keys of featureflow.paths)."""
        return [self.paths(html, **wildcards)] + ([self.paths(png, **wildcards)] if self.png else [])

    def corpus(self, name: str) -> CorpusSettings:
        return from_block(CorpusSettings, self.config["corpora"][name])

    @property
    def tokenizer(self) -> TokenizerSettings:
        return from_block(TokenizerSettings, self.config["tokenizer"])

    @property
    def lm(self) -> LMSettings:
        return from_block(LMSettings, self.config["lm"])

    @property
    def context_size(self) -> int:
        """The lineage's context length in tokens (`lm.context_size`, resolved by featureflow.context)."""
        return int(self.config["lm"]["context_size"])

    def train_job(self, model: str) -> TrainJob:
        """Settings of one model's `train` job: `lm.scratch` or `lm.finetune` by the model's kind."""
        return self.lm.train_job(fine_tune=self.lineage.models[model].parent is not None)

    @property
    def merge(self) -> MergeSettings:
        return from_block(MergeSettings, self.config["merge"])

    @property
    def sae(self) -> SAESettings:
        return sae_settings({k: v for k, v in self.config["sae"].items() if k not in SAE_BLOCK_ONLY})

    def sae_seed(self, model: str) -> int:
        """The seed of `model`'s SAE, in the lineage and at every width (`sae.seeds`; featureflow.settings.sae_seed):
        the run's seed (`shared`) or the run's seed XOR the CRC-32 of the model's name (`per_model`)."""
        return sae_seed(self.seed, model, self.config["sae"]["seeds"])

    @property
    def sae_eval_tokens(self) -> int:
        """Held-out tokens the SAE metrics are computed on (`sae.eval_tokens`; read by sae_eval alone)."""
        return int(self.config["sae"]["eval_tokens"])

    @property
    def acts(self) -> ActsSettings:
        """`acts` without `corpora` (which decides the sample's input files, not how it is drawn)."""
        return from_block(ActsSettings, {k: v for k, v in self.config["acts"].items() if k != "corpora"})

    @property
    def correlation(self) -> CorrelationSettings:
        return from_block(CorrelationSettings, self.config["correlation"])

    @property
    def analysis(self) -> AnalysisSettings:
        return from_block(AnalysisSettings, self.config["analysis"])

    @property
    def interp(self) -> InterpSettings:
        return from_block(InterpSettings, self.config["interp"])

    def job_class(self, name: str) -> JobClass:
        """Threads, memory, runtime, GPUs and device of job class `name` (config `resources:`)."""
        return from_block(JobClass, self.config["resources"][name])

    def sae_seed_control_seed(self, model: str) -> int:
        """The seed of `model`'s second SAE (the seed ceiling, at every width): `controls.sae_seed.seed` under the
        rule of `sae_seed`, so it differs from `sae_seed(model)` in either mode (only read when that control is on)."""
        return sae_seed(int(self.config["controls"]["sae_seed"]["seed"]), model, self.config["sae"]["seeds"])

    @property
    def null_permutations(self) -> int:
        """Shifted passes per edge of the shuffle null (0: no null)."""
        block = self.config["controls"].get("shuffle")
        return int(block["permutations"]) if block is not None else 0
