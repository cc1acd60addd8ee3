"""File routing per stage: which files each stage's jobs read, as the rules declare them.

One mixin of `Plan` per stage (data, models and merges, SAEs, flow, features and the report); file names
come from `featureflow.paths`, the controls' and experiments' files from `featureflow.plan.experiments`."""

from __future__ import annotations

import dataclasses
from typing import Any

from featureflow.config import is_hub_dataset
from featureflow.criteria import CRITERIA
from featureflow.inputs import LineageFiles
from featureflow.lineage import parse_edge_name
from featureflow.paths import SPLITS


def _source_param(source: Any) -> dict[str, Any]:
    """A `Pretrained` as a rule param, its `format` left out while "auto" (so that runs from before the
    key keep their params, and their jobs stay done)."""
    fields = dataclasses.asdict(source)
    return {k: v for k, v in fields.items() if not (k == "format" and v in (None, "auto"))}


class DataRoutes:
    """The data stage: corpora, the tokenizer, token files and mixtures; pretrained sources."""

    def local_files(self, corpus: str) -> list[str]:
        return [str(p) for p in self.files.get(corpus, [])]

    def hub_corpora(self) -> list[str]:
        """Corpora read from the Hugging Face hub (their jobs run where the network is)."""
        return [c for c in self.config["corpora"] if is_hub_dataset(self.config["corpora"][c].get("dataset"))]

    def file_corpora(self) -> list[str]:
        """Corpora read from files on this machine (local text, or json/parquet/text builders)."""
        hub = set(self.hub_corpora())
        return [c for c in self.config["corpora"] if c not in hub]

    def tokenizer_corpora(self) -> list[str]:
        """Corpora the BPE trains on: configured, else those of the models trained from scratch."""
        tok = self.tokenizer
        if tok.kind != "bpe" or self.lineage.pretrained:
            return []
        if tok.train_on:
            return list(tok.train_on)
        return list(dict.fromkeys(c for m in self.lineage.roots for c in self.lineage.models[m].train_on))

    def used_corpora(self) -> list[str]:
        """Corpora some model trains on, in config order."""
        used = {c for m in self.lineage.order for c in self.lineage.models[m].corpora}
        used |= set(self.config["acts"].get("corpora") or []) | set(self.tokenizer_corpora())
        return [c for c in self.config["corpora"] if c in used]

    def token_counts(self) -> list[tuple[str, str, str]]:
        """(corpus, split, counts file) of every token array the workflow builds."""
        return [(c, s, self.paths("token_counts", corpus=c, split=s)) for c in self.used_corpora() for s in SPLITS]

    def validation_token_files(self) -> dict[str, str]:
        """Validation token file of every used corpus (corpus -> file)."""
        return {c: self.paths("tokens", corpus=c, split="validation") for c in self.used_corpora()}

    def unigram_baselines(self) -> dict[str, dict[str, str]]:
        """Unigram reference rows of the eval table: label -> {corpus: token file it learns from}.

        One row per model trained from scratch (frequencies of its own training mixture, the fair
        reference for that model), and an in-domain row (each corpus' own training split).
        """
        corpora = self.used_corpora()
        rows = {f"unigram[{m} data]": {c: self.paths("mixture", model=m, split="train") for c in corpora}
                for m in self.lineage.roots if m in self.lineage.trained}
        rows["unigram[in-domain]"] = {c: self.paths("tokens", corpus=c, split="train") for c in corpora}
        return rows

    def baseline_token_files(self) -> list[str]:
        return sorted({f for files in self.unigram_baselines().values() for f in files.values()})

    def tokenizer_params(self) -> dict[str, Any]:
        """The tokenizer rule's params: the `tokenizer` block's settings and, when the lineage has
        pretrained models, their folders (their tokenizer is the lineage's)."""
        settings = {"settings": dataclasses.asdict(self.tokenizer)}
        if self.lineage.pretrained:
            return {"model_dirs": {m: self.paths("model_dir", model=m) for m in self.lineage.pretrained}} | settings
        return settings

    def pretrained_source(self, model: str) -> dict[str, Any]:
        """Where a pretrained model comes from (a rule param)."""
        return _source_param(self.lineage.models[model].pretrained)

    def sae_source(self, model: str) -> dict[str, Any]:
        """Where a model's imported SAE comes from (a rule param)."""
        return _source_param(self.lineage.models[model].sae)

    def pretrained_files(self, model: str, sae: bool = False) -> list[str]:
        """The files of a pretrained model's (or its SAE's) local folder; none for a hub id, which the
        fetch rule downloads."""
        m = self.lineage.models[model]
        source = m.sae if sae else m.pretrained
        folder = source.local_folder(".") if source is not None else None
        return sorted(str(f) for f in folder.iterdir() if f.is_file()) if folder is not None else []

    def lineage_token_files(self, model: str, split: str) -> list[str]:
        """Token files of every corpus in a model's lineage (its SAE's data, paper footnote 5)."""
        return [self.paths("tokens", corpus=c, split=split) for c in self.lineage.lineage_corpora(model)]


class ModelRoutes:
    """The LM and merge stages: evaluations, merge participants and their settings."""

    def evaluated_models(self) -> list[str]:
        """Models with an eval.json: every model of the lineage."""
        return self.lineage.order

    def own_corpora(self, model: str) -> list[str]:
        """A model's own domain: its training corpora, or for a merged model its inputs' domains."""
        m = self.lineage.models[model]
        if m.corpora:
            return list(m.corpora)
        return list(dict.fromkeys(c for src in self.lineage.inputs_of(model) for c in self.own_corpora(src)))

    def merge_base(self, model: str) -> str | None:
        """The inputs' nearest common ancestor: TIES' base and Figure 5's dashed baselines."""
        return self.lineage.common_ancestor(*self.lineage.models[model].merge)

    def merge_participants(self, model: str) -> list[str]:
        base = self.merge_base(model)
        return [*self.lineage.models[model].merge, *([base] if base else [])]

    def merge_spec(self, model: str) -> dict[str, Any]:
        """Everything the merge rules need about one merged model, as plain data (a rule param)."""
        m = self.lineage.models[model]
        return {"first": m.merge[0], "second": m.merge[1], "base": self.merge_base(model), "method": m.method, "t": m.t,
                "dirs": {n: self.paths("model_dir", model=n) for n in self.merge_participants(model)},
                "own_validation": {n: [self.paths("tokens", corpus=c, split="validation") for c in self.own_corpora(n)]
                                   for n in m.merge},
                "block_size": self.context_size}


class SAERoutes:
    """The SAE stage: which SAEs are trained here and which are imported."""

    def trained_saes(self) -> list[str]:
        """Models whose SAE this workflow trains (the others import theirs)."""
        return [m for m in self.lineage.order if self.lineage.models[m].sae is None]


class FlowRoutes:
    """The flow stage: the common sample, activations and matches per edge, classify's inputs."""

    def common_sample_files(self) -> dict[str, str]:
        """Train token files of the common distribution: `acts.corpora`, else every corpus any model learns from."""
        corpora = self.config["acts"].get("corpora") or dict.fromkeys(
            c for m in self.lineage.order for c in self.lineage.lineage_corpora(m))
        return {c: self.paths("tokens", corpus=c, split="train") for c in corpora}

    def edge_names(self) -> list[str]:
        return [e.name for e in self.lineage.edges]

    def edge_acts(self, edge: str) -> dict[str, str]:
        """The activation files an edge's correlation reads: {"source": ..., "target": ...}."""
        source, target = parse_edge_name(edge)
        return {"source": self.paths("acts", model=source), "target": self.paths("acts", model=target)}

    def edge_saes(self, edge: str) -> dict[str, str]:
        """The SAE weight files of an edge's two models: {"source": ..., "target": ...}."""
        source, target = parse_edge_name(edge)
        return {"source": self.paths("sae_weights", model=source), "target": self.paths("sae_weights", model=target)}

    def correlation_files(self) -> dict[str, str]:
        return {e.name: self.paths("corr", edge=e.name) for e in self.lineage.edges}

    def compared_criteria(self) -> list[str]:
        """Criteria computed on every edge: all of them with `controls.compare_criteria`, else classify's."""
        return list(CRITERIA) if self.config["controls"]["compare_criteria"] else [self.criterion]

    def criterion_files(self, criterion: str) -> dict[str, str]:
        """Per lineage edge, the matches file of `criterion` (best_partner: the correlations)."""
        return {e: self.paths(CRITERIA[criterion].result, edge=e) for e in self.edge_names()}

    def classify_files(self) -> dict[str, str]:
        return self.criterion_files(self.criterion)

    def criteria_files(self) -> dict[str, dict[str, str]]:
        return {c: self.criterion_files(c) for c in self.compared_criteria()}

    def flow_spec(self) -> dict[str, Any]:
        """The lineage as classify and the Sankey need it (plain data, a rule param)."""
        return {"edges": [{"source": e.source, "target": e.target, "kind": e.kind} for e in self.lineage.edges],
                "inputs": {m: list(self.lineage.inputs_of(m)) for m in self.lineage.order},
                "roots": self.lineage.roots}


class FeatureRoutes:
    """The analysis, interp and report stages: what each reads, as `LineageFiles` by role."""

    def _lineage_files(self, models: list[str], roles: dict[str, str], with_corr: bool = False, **single: str) -> LineageFiles:
        """LineageFiles of `models`: per-model `roles` (role -> result key), every edge's correlations
        when `with_corr`, and the shared files `single` (role -> result key)."""
        per_model = {role: {m: self.paths(key, model=m) for m in models} for role, key in roles.items()}
        corr = self.correlation_files() if with_corr else {}
        return LineageFiles(models=tuple(models), edge_names=tuple(corr), corr=corr, **per_model,
                            **{role: self.paths(key) for role, key in single.items()})

    def feature_stats_files(self, model: str) -> LineageFiles:
        """What one model's feature statistics read: its activations, model and SAE weights, the tokenizer."""
        return self._lineage_files([model], {"acts": "acts", "weights": "model_weights", "sae_weights": "sae_weights"},
                                   tokenizer="tokenizer_meta")

    def case_study_files(self) -> LineageFiles:
        """What the case studies read: classes, counts, every model's statistics and activations, the sample."""
        return self._lineage_files(self.lineage.order, {"tables": "feature_table", "stats": "feature_stats", "acts": "acts"},
                                   edges="edges", counts="counts", sample="sample", tokenizer="tokenizer_meta")

    def browser_files(self) -> LineageFiles:
        """What the browser reads: every model's statistics and activations, every edge's partners under
        the criterion classify uses (`corr`, so the page's classes are classify's) and under the other
        compared criteria, the null where it runs and applies (correlations, not decoder cosines), the
        sample, and the explanations when autointerp runs."""
        roles = {"tables": "feature_table", "stats": "feature_stats", "acts": "acts"}
        if self.config["interp"]["enabled"]:
            roles["interp"] = "interp_jsonl"
        files = self._lineage_files(self.lineage.order, roles, with_corr=True, sample="sample", tokenizer="tokenizer_meta")
        others = {c: self.criterion_files(c) for c in self.compared_criteria()
                  if c != self.criterion and CRITERIA[c].result != "corr"}  # the correlations are classify's or shown as corr
        null = self.control_files()["null"] if CRITERIA[self.criterion].correlations else {}
        return dataclasses.replace(files, corr=self.classify_files(), null=null, criteria=others)

    def interp_files(self, model: str | None = None) -> LineageFiles:
        """What autointerp reads: classes, statistics, activations and the sample, for one model (with
        the cost estimate, which shares the budget out) or for all (the estimate itself)."""
        single = {"edges": "edges", "sample": "sample", "tokenizer": "tokenizer_meta"}
        if model:
            single["estimate"] = "interp_estimate"
        return self._lineage_files([model] if model else self.lineage.order, {"stats": "feature_stats", "acts": "acts"},
                                   **single)

    def report_files(self) -> dict[str, Any]:
        """What the reproduction table reads, grouped as `featureflow.report.load_run` wants them."""
        p, order = self.paths, self.lineage.order
        files: dict[str, Any] = {
            "sae_metrics": {m: p("sae_metrics", model=m) for m in order},
            "sae_extra": {m: p("sae_extra", model=m) for m in order},
            "train_meta": {m: p("train_meta", model=m) for m in self.lineage.trained},
            "pretrained_meta": {m: p("pretrained_meta", model=m) for m in self.lineage.pretrained},
            "merge_choice": {m: p("merge_choice", model=m) for m in self.lineage.merged},
            "tokenizer_meta": p("tokenizer_meta"), "counts": p("counts"), "case_studies": p("case_studies"),
            "interp_estimate": p("interp_estimate")}
        if self.config["interp"]["enabled"]:
            files["interp_summary"] = p("interp_summary")
        return files
