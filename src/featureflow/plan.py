"""From a raw workflow config to a checked plan: typed settings, the lineage, and target files.

Everything that decides *what* the workflow builds lives here, so the rules never read the
config to make lists of their own. File names come from `featureflow.paths`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featureflow.config import ConfigError, is_hub_dataset, resolve_local_files, validate_config
from featureflow.context import lineage_context
from featureflow.inputs import LineageFiles
from featureflow.lineage import Lineage, build_lineage, parse_edge_name
from featureflow.paths import SPLITS, TEMPLATES, ResultPaths
from featureflow.settings import (
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
)

# Matching criteria (featureflow.flow.matching.CRITERIA) -> the result key of their per-edge matches.
CRITERION_FILES = {"best_partner": "corr", "one_to_one": "one_to_one", "decoder_cosine": "decoder_matches"}


@dataclass
class Plan:
    config: dict[str, Any]
    lineage: Lineage
    files: dict[str, list[Path]]  # local corpus -> its resolved files
    paths: ResultPaths = field(init=False)

    def __post_init__(self) -> None:
        self.paths = ResultPaths(self.config["results_dir"])

    # --- settings, one typed object per config block -------------------------------------------

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
    def criterion(self) -> str:
        """What classify calls the same feature (`criterion`; featureflow.flow.matching)."""
        return str(self.config["criterion"])

    def compared_criteria(self) -> list[str]:
        """Criteria computed on every edge: all of them with `controls.compare_criteria`, else classify's."""
        return list(CRITERION_FILES) if self.config["controls"]["compare_criteria"] else [self.criterion]

    def criterion_files(self, criterion: str) -> dict[str, str]:
        """Per lineage edge, the matches file of `criterion` (best_partner: the correlations)."""
        return {e: self.paths(CRITERION_FILES[criterion], edge=e) for e in self.edge_names()}

    def classify_files(self) -> dict[str, str]:
        return self.criterion_files(self.criterion)

    def criteria_files(self) -> dict[str, dict[str, str]]:
        return {c: self.criterion_files(c) for c in self.compared_criteria()}

    def edge_saes(self, edge: str) -> dict[str, str]:
        """The SAE weight files of an edge's two models: {"source": ..., "target": ...}."""
        source, target = parse_edge_name(edge)
        return {"source": self.paths("sae_weights", model=source), "target": self.paths("sae_weights", model=target)}

    def model_seed(self, model: str) -> int:
        """The training seed of `model`: its own `seed` key, else the run's."""
        own = self.lineage.models[model].seed
        return self.seed if own is None else own

    # --- controls: yardsticks for "persisting" (featureflow.flow.controls) -----------------------

    def sae_seed_models(self) -> list[str]:
        """Models that get a second SAE of another seed (`controls.sae_seed`; none when it is absent). By
        default the root(s) and the last model, of those whose SAE is trained here: an imported SAE has
        no recipe to repeat."""
        block = self.config["controls"].get("sae_seed")
        if block is None:
            return []
        if block["models"] is not None:
            return list(block["models"])
        variants = merge_variants(self.config)  # the last configured model, not a compared method's sibling
        order = [m for m in self.lineage.order if not self.lineage.models[m].control_of and m not in variants]
        trained = set(self.trained_saes())
        return [m for m in dict.fromkeys([*self.lineage.roots, order[-1]]) if m in trained]

    @property
    def sae_seed_control_seed(self) -> int:
        """The second SAEs' seed (`controls.sae_seed.seed`; only read when that control is on)."""
        return int(self.config["controls"]["sae_seed"]["seed"])

    @property
    def null_permutations(self) -> int:
        """Shifted passes per edge of the shuffle null (0: no null)."""
        block = self.config["controls"].get("shuffle")
        return int(block["permutations"]) if block is not None else 0

    def merge_method_groups(self) -> dict[str, list[str]]:
        """Each configured merged model and its siblings of the compared methods (`experiments.merge_methods`),
        itself first; empty when no method is compared."""
        methods = self.config["experiments"]["merge_methods"]
        if not methods:
            return {}
        variants = merge_variants(self.config)
        return {m: [m, *(v for v, (orig, _) in variants.items() if orig == m)] for m in self.lineage.merged if m not in variants}

    def merge_path_models(self) -> list[str]:
        """Merged models whose parents' features are followed along the merge path (`experiments.merge_path`)."""
        if not self.config["experiments"]["merge_path"]:
            return []
        variants = merge_variants(self.config)  # the configured merges' paths (a sibling's would repeat the sweep per method)
        return [m for m in self.lineage.merged if m not in variants]

    def merge_path_inputs(self, model: str) -> dict[str, Any]:
        """What the merge-path job of `model` reads, by role (flow.merge_path.MergePathFiles' fields)."""
        m, p = self.lineage.models[model], self.paths
        roles = dict(zip(("first", "second"), m.merge, strict=True))
        base = self.merge_base(model) if m.method == "ties" else None
        return {"model_dirs": {r: p("model_dir", model=n) for r, n in (roles | ({"base": base} if base else {})).items()},
                "sae_dirs": {r: p("sae_dir", model=n) for r, n in roles.items()},
                "acts": {r: p("acts", model=n) for r, n in roles.items()},
                "sample": p("sample"), "sweep_csv": p("merge_sweep", model=model)}

    def merge_path_spec(self, model: str) -> dict[str, Any]:
        """The merge-path job's settings (flow.merge_path.MergePathSpec's fields): the parents, the merge method,
        the lineage's hook and threshold, and the sample positions read per t."""
        m = self.lineage.models[model]
        return {"first": m.merge[0], "second": m.merge[1], "method": m.method, "hook_name": self.sae.hook,
                "threshold": self.threshold, "tokens": int(self.config["experiments"]["merge_path_tokens"])}

    def merge_path_files(self, model: str) -> list[str]:
        """The files behind `merge_path_inputs` (a folder stands for its weights)."""
        inputs, p = self.merge_path_inputs(model), self.paths
        m = self.lineage.models[model]
        models = [*m.merge, *([self.merge_base(model)] if "base" in inputs["model_dirs"] else [])]
        return ([p("model_weights", model=n) for n in models] + [p("sae_weights", model=n) for n in m.merge]
                + list(inputs["acts"].values()) + [inputs["sample"], inputs["sweep_csv"]])

    # --- experiment: dictionary widths (experiments.widths) ---------------------------------------

    def widths(self) -> list[int]:
        """Expansion factors of the width sweep, the lineage's own among them, ascending; empty when off."""
        listed = width_l1_coefficients(self.config)
        return sorted({*listed, self.sae.expansion_factor}) if listed else []

    def trained_widths(self) -> list[int]:
        """The sweep's widths that get SAEs of their own (all but the lineage's, whose SAEs exist)."""
        return [w for w in self.widths() if w != self.sae.expansion_factor]

    def width_models(self) -> list[str]:
        """Models the width sweep covers: those of the configured lineage whose SAE is trained here (an
        imported SAE has one width; seed controls and compared merge methods' siblings are left out)."""
        if not self.widths():
            return []
        variants = merge_variants(self.config)
        return [m for m in self.trained_saes() if not self.lineage.models[m].control_of and m not in variants]

    def width_edges(self) -> list[str]:
        """Lineage edges between two models of the width sweep."""
        models = set(self.width_models())
        return [e.name for e in self.lineage.edges if e.source in models and e.target in models]

    def sae_at_width(self, width: int) -> SAESettings:
        """The lineage's SAE recipe with another expansion factor (and the width's own L1 coefficient, if set)."""
        l1 = width_l1_coefficients(self.config).get(int(width)) or self.sae.l1_coefficient
        return dataclasses.replace(self.sae, expansion_factor=int(width), l1_coefficient=float(l1))

    def width_seed_models(self) -> list[str]:
        """Models of the sweep with a seed ceiling at every width: those of `controls.sae_seed`."""
        return [m for m in self.sae_seed_models() if m in self.width_models()]

    def width_file(self, key: str, width: int, **wildcards: str) -> str:
        """File `key` ("sae_metrics", "acts", "corr", "seed_acts", "seed_corr") at one width of the sweep:
        at the lineage's own width, the lineage's own file (the seed control's for "seed_*")."""
        if int(width) == self.sae.expansion_factor:
            return self.paths(key.replace("seed_", "control_"), **wildcards)
        return self.paths(f"width_{key}", width=str(width), **wildcards)

    def width_edge_acts(self, edge: str, width: int) -> dict[str, str]:
        """The activation files of an edge's two models at one width: {"source": ..., "target": ...}."""
        source, target = parse_edge_name(edge)
        return {"source": self.width_file("acts", width, model=source), "target": self.width_file("acts", width, model=target)}

    def widths_inputs(self) -> dict[str, dict[str, dict[str, str]]]:
        """What the widths table reads, by role and width: SAE metrics per model, correlations per edge, and
        each seed-ceiling model's correlation with its second SAE."""
        ws = self.widths()
        return {"metrics": {str(w): {m: self.width_file("sae_metrics", w, model=m) for m in self.width_models()} for w in ws},
                "corr": {str(w): {e: self.width_file("corr", w, edge=e) for e in self.width_edges()} for w in ws},
                "ceiling": {str(w): {m: self.width_file("seed_corr", w, model=m) for m in self.width_seed_models()} for w in ws}}

    def widths_spec(self) -> dict[str, Any]:
        """The widths table's settings (flow.widths.WidthSpec's fields)."""
        names = set(self.width_edges())
        edges = [{"source": e.source, "target": e.target, "kind": e.kind} for e in self.lineage.edges if e.name in names]
        return {"widths": self.widths(), "own": self.sae.expansion_factor, "models": self.width_models(), "edges": edges,
                "threshold": self.threshold, "l1_coefficients": {str(w): self.sae_at_width(w).l1_coefficient for w in self.widths()}}

    def control_edge_names(self) -> list[str]:
        return [e.name for e in self.lineage.control_edges]

    def control_files(self) -> dict[str, dict[str, str]]:
        """The controls' stored results as classify and the threshold curve read them (empty parts when off)."""
        return {"sae_seed": {m: self.paths("control_corr", model=m) for m in self.sae_seed_models()},
                "model_seed": {e: self.paths("corr", edge=e) for e in self.control_edge_names()},
                "null": {e: self.paths("null", edge=e) for e in self.edge_names()} if self.null_permutations else {}}

    def control_inputs(self) -> list[str]:
        return sorted(f for files in self.control_files().values() for f in files.values())

    @property
    def threshold_from_null(self) -> bool:
        return isinstance(self.threshold, str)

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

    @property
    def sae_eval_tokens(self) -> int:
        """Held-out tokens the SAE metrics are computed on (`sae.eval_tokens`; read by sae_eval alone)."""
        return int(self.config["sae"]["eval_tokens"])

    def corpus(self, name: str) -> CorpusSettings:
        return from_block(CorpusSettings, self.config["corpora"][name])

    @property
    def tokenizer(self) -> TokenizerSettings:
        return from_block(TokenizerSettings, self.config["tokenizer"])

    def tokenizer_params(self) -> dict[str, Any]:
        """The tokenizer rule's params: the `tokenizer` block's settings and, when the lineage has
        pretrained models, their folders (their tokenizer is the lineage's)."""
        settings = {"settings": dataclasses.asdict(self.tokenizer)}
        if self.lineage.pretrained:
            return {"model_dirs": {m: self.paths("model_dir", model=m) for m in self.lineage.pretrained}} | settings
        return settings

    def pretrained_source(self, model: str) -> dict[str, Any]:
        """Where a pretrained model comes from (a rule param)."""
        return dataclasses.asdict(self.lineage.models[model].pretrained)

    def sae_source(self, model: str) -> dict[str, Any]:
        """Where a model's imported SAE comes from (a rule param)."""
        return dataclasses.asdict(self.lineage.models[model].sae)

    def trained_saes(self) -> list[str]:
        """Models whose SAE this workflow trains (the others import theirs)."""
        return [m for m in self.lineage.order if self.lineage.models[m].sae is None]

    def pretrained_files(self, model: str, sae: bool = False) -> list[str]:
        """The files of a pretrained model's (or its SAE's) local folder; none for a hub id, which the
        fetch rule downloads."""
        m = self.lineage.models[model]
        source = m.sae if sae else m.pretrained
        folder = source.local_folder(".") if source is not None else None
        return sorted(str(f) for f in folder.iterdir() if f.is_file()) if folder is not None else []

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
        return from_block(SAESettings, {k: v for k, v in self.config["sae"].items() if k != "eval_tokens"})

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

    # --- what is built from what ----------------------------------------------------------------

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

    def lineage_token_files(self, model: str, split: str) -> list[str]:
        """Token files of every corpus in a model's lineage (its SAE's data, paper footnote 5)."""
        return [self.paths("tokens", corpus=c, split=split) for c in self.lineage.lineage_corpora(model)]

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

    def correlation_files(self) -> dict[str, str]:
        return {e.name: self.paths("corr", edge=e.name) for e in self.lineage.edges}

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
        others = {c: self.criterion_files(c) for c in self.compared_criteria() if c not in ("best_partner", self.criterion)}
        null = self.control_files()["null"] if self.criterion != "decoder_cosine" else {}
        return dataclasses.replace(files, corr=self.classify_files(), null=null, **others)

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

    def landing_sections(self) -> list[dict[str, Any]]:
        """What the landing page links, by section; paths relative to the results folder."""
        order, merged, interp = self.lineage.order, self.lineage.merged, self.config["interp"]["enabled"]
        t = TEMPLATES

        def fig(label: str, html: str, png: str | None = None, note: str = "", **wc: str) -> dict[str, Any]:
            item = {"label": label, "path": t[html].format(**wc), "note": note}
            return item | ({"thumb": t[png].format(**wc), "also": [("PNG", t[png].format(**wc))]} if png and self.png else {})

        figures = [fig("Figure 2: feature flow along the lineage (Sankey)", "sankey_html", "sankey_png"),
                   fig("Persisting share against the threshold, with the seed controls and the null", "threshold_curve_html",
                       "threshold_curve_png")]
        figures += [fig(f"Figure 5: merging {m} along t", "merge_figure_html", "merge_figure_png", model=m) for m in merged]
        if self.merge_method_groups():
            figures.append(fig("Merge methods compared (experiment)", "merge_methods_html", "merge_methods_png"))
        figures += [fig(f"{m}: each parent's features along the merge path (experiment)", "merge_path_html", "merge_path_png",
                        model=m) for m in self.merge_path_models()]
        if self.width_edges():
            figures.append(fig("Persisting share against the SAE's width (experiment)", "widths_html", "widths_png"))
        figures += [fig("Figure 3: the persisting feature (case study a)", "fig3_html"),
                    fig("Figure 4: the disappearing feature (case study b)", "fig4_html")]
        if interp:
            figures.append(fig("Figure 6: explanation scores, persisting vs other", "interp_fig6_html", "interp_fig6_png"))
        saes = [fig(f"{m}: feature density", "sae_density_html", "sae_density_png", model=m) for m in order]
        if self.lineage.trained:
            saes.append(fig("Training curves of the language models (loss, learning rate)", "lm_curves_html", "lm_curves_png"))
        if self.trained_saes():
            saes.append(fig("Training curves of the SAEs (loss, MSE, L0, dead share)", "sae_curves_html", "sae_curves_png"))
        browser = [{"label": f"{m}: every feature", "path": t["browser_index"].format(model=m),
                    "note": "sortable index; each feature's page has its contexts, tokens, logit effects and partners"} for m in order]
        tables = [{"label": label, "path": t[key], "note": note} for key, label, note in (
            ("counts", "counts.csv", "persisting / emerging / disappearing per edge and the paper's counts"),
            ("edges", "edges.csv", "every feature's class and best partner on every edge"),
            ("sae_table", "sae/metrics.tsv", "L0, MSE, explained variance and loss, dead and dense features per SAE"),
            ("eval_table", "lm/eval.tsv", "next-token loss and accuracy of every model on every corpus"),
            ("token_summary", "data/tokens/summary.tsv", "documents, characters and tokens per corpus"),
            ("case_studies", "analysis/case_studies.json", "the features the case studies found, with LLRs and correlations"))]
        if self.config["controls"]["compare_criteria"]:
            tables.append({"label": "criteria.csv", "path": t["criteria"],
                           "note": "persisting pairs per matching criterion per edge, and their agreement with best partners"})
        if self.width_edges():
            tables += [{"label": "widths.csv", "path": t["widths"], "note": "persisting and emerging shares per edge at every SAE width"},
                       {"label": "widths_saes.csv", "path": t["widths_saes"], "note": "every SAE of the width sweep: L0, losses, targets"}]
        tables += [{"label": f"{m}: features.csv", "path": t["feature_table"].format(model=m),
                    "note": "per-feature statistics and LLRs"} for m in order]
        autointerp = [{"label": "estimate.json", "path": t["interp_estimate"],
                       "note": "what explaining the selected features would send and cost; token categories"}]
        if interp:
            autointerp += [{"label": "summary.json", "path": t["interp_summary"], "note": "scores, costs, failures, categories"}]
            autointerp += [{"label": f"{m}.jsonl", "path": t["interp_jsonl"].format(model=m)} for m in order]
        return [{"title": "Figures", "items": figures},
                {"title": "Feature browser", "items": browser},
                {"title": "Sparse autoencoders", "items": saes},
                {"title": "Tables", "items": tables},
                {"title": "Autointerp", "items": autointerp,
                 "note": "" if interp else "Not run (interp.enabled is false): only the cost estimate."}]

    def landing_files(self) -> list[str]:
        """Every file the landing page links or shows, under the results folder."""
        rels = {x[k] for sec in self.landing_sections() for x in sec["items"] for k in ("path", "thumb") if x.get(k)}
        return sorted(f"{self.paths.root}/{r}" for r in rels)

    def report_inputs(self) -> list[str]:
        """Every file the report rule reads or links."""
        files = self.report_files()
        flat = [f for v in files.values() for f in (v.values() if isinstance(v, dict) else [v])]
        return sorted(set(flat + self.landing_files()))

    def flow_spec(self) -> dict[str, Any]:
        """The lineage as classify and the Sankey need it (plain data, a rule param)."""
        return {"edges": [{"source": e.source, "target": e.target, "kind": e.kind} for e in self.lineage.edges],
                "inputs": {m: list(self.lineage.inputs_of(m)) for m in self.lineage.order},
                "roots": self.lineage.roots}

    def targets(self) -> list[str]:
        """Every final output of the workflow for this config."""
        p, fig, order = self.paths, self.figure_files, self.lineage.order
        out = [p("tokenizer_meta"), p("token_summary")]
        out += [p("tokens", corpus=c, split=s) for c in self.used_corpora() for s in SPLITS]
        out += [p("mixture", model=m, split=s) for m in self.lineage.trained for s in SPLITS]
        out += [p("model_eval", model=m) for m in self.evaluated_models()] + [p("eval_table")]
        out += fig("lm_curves_html", "lm_curves_png") if self.lineage.trained else []
        out += [f for m in self.lineage.merged for f in [p("merge_choice", model=m), *fig("merge_figure_html", "merge_figure_png", model=m)]]
        out += [p("sae_metrics", model=m) for m in order] + [p("sae_table")]
        out += fig("sae_curves_html", "sae_curves_png") if self.trained_saes() else []
        if self.lineage.edges:
            out += [p("edges"), p("counts"), *fig("sankey_html", "sankey_png")]
            out += self.control_inputs() + fig("threshold_curve_html", "threshold_curve_png")
            out += [f for files in self.criteria_files().values() for f in files.values()]
            if self.config["controls"]["compare_criteria"]:
                out.append(p("criteria"))
            out += [p("feature_table", model=m) for m in order]
            out += [p(key) for key in ("case_studies", "fig3_html", "fig4_html", "browser_threshold")]
            out += [f for m in self.merge_path_models() for f in [p("merge_path", model=m), *fig("merge_path_html", "merge_path_png", model=m)]]
            out += [p("merge_methods"), *fig("merge_methods_html", "merge_methods_png")] if self.merge_method_groups() else []
            out += [p("widths"), p("widths_saes"), *fig("widths_html", "widths_png")] if self.width_edges() else []
            out += [p("browser_index", model=m) for m in order]
            out.append(p("interp_estimate"))
            if self.config["interp"]["enabled"]:
                out += [p("interp_jsonl", model=m) for m in order] + [p("interp_summary"), *fig("interp_fig6_html", "interp_fig6_png")]
            out += [p(key) for key in ("reproduction_md", "reproduction_html", "landing")]
        return out


def load_plan(config: dict[str, Any], schema_path: str | Path, workdir: str | Path = ".") -> Plan:
    """Validate `config`, build the lineage and check local corpus files; raise ConfigError on any problem."""
    cfg = validate_config(config, schema_path)
    _add_merge_variants(cfg)
    lineage = build_lineage(cfg)
    for corpus in cfg["tokenizer"].get("train_on") or []:
        if corpus not in cfg["corpora"]:
            raise ConfigError(f"config key 'tokenizer.train_on': '{corpus}' is not a corpus (known: {', '.join(cfg['corpora'])})")
    for name, spec in cfg["corpora"].items():
        if ("files" in spec) == ("dataset" in spec):
            raise ConfigError(f"config key 'corpora.{name}' needs exactly one of 'files' or 'dataset'")
    hypotheses = cfg["analysis"]["hypotheses"]
    for study, name in cfg["analysis"]["case_studies"].items():
        if study != "contexts" and name not in hypotheses:
            raise ConfigError(f"config key 'analysis.case_studies.{study}': '{name}' is not a hypothesis in analysis.hypotheses "
                              f"(known: {', '.join(hypotheses) or 'none'})")
    _check_controls(cfg, lineage)
    _check_widths(cfg)
    _check_pretrained(cfg, lineage, workdir)
    cfg["lm"]["context_size"] = lineage_context(cfg, lineage, workdir)
    files = {n: resolve_local_files(n, s["files"], workdir) for n, s in cfg["corpora"].items() if "files" in s}
    return Plan(cfg, lineage, files)


def _check_controls(cfg: dict[str, Any], lineage: Lineage) -> None:
    controls = cfg["controls"]
    sae_seed = controls.get("sae_seed")
    if sae_seed is not None:
        for model in sae_seed["models"] or []:
            if model not in lineage.models:
                raise ConfigError(f"config key 'controls.sae_seed.models': '{model}' is not a model (known: {', '.join(lineage.order)})")
            if lineage.models[model].sae is not None:
                raise ConfigError(f"config key 'controls.sae_seed.models': '{model}' imports its SAE (models.{model}.sae); "
                                  "the seed ceiling repeats this run's SAE recipe, so it needs a model whose SAE is trained here")
        if sae_seed["seed"] == cfg["seed"]:
            raise ConfigError(f"config key 'controls.sae_seed.seed': {sae_seed['seed']} is the run's seed; the second SAEs "
                              "need another seed")
    if isinstance(cfg["threshold"], str) and cfg["criterion"] == "decoder_cosine":
        raise ConfigError(f"config key 'threshold': {cfg['threshold']!r} is a threshold on activation correlations; "
                          "criterion 'decoder_cosine' needs a number")
    if isinstance(cfg["threshold"], str) and cfg["experiments"]["merge_path"]:
        raise ConfigError(f"config key 'experiments.merge_path' needs a numeric threshold (not {cfg['threshold']!r})")
    if isinstance(cfg["threshold"], str) and cfg["experiments"]["widths"]:
        raise ConfigError(f"config key 'experiments.widths' needs a numeric threshold (not {cfg['threshold']!r}): a null "
                          "calibrated on one width says nothing of another")
    if cfg["criterion"] == "decoder_cosine" and cfg["experiments"]["widths"]:
        raise ConfigError("config key 'experiments.widths' compares activation correlations; criterion 'decoder_cosine' "
                          "puts the threshold on decoder cosines (use best_partner or one_to_one)")
    if isinstance(cfg["threshold"], str) and "shuffle" not in controls:
        raise ConfigError(f"config key 'threshold': {cfg['threshold']!r} needs the shuffle null (add controls: {{shuffle: {{}}}})")


def _check_pretrained(cfg: dict[str, Any], lineage: Lineage, workdir: str | Path) -> None:
    """Local folders of pretrained models and SAEs exist (hub ids are checked when fetched); the common
    sample's corpora are corpora."""
    for name in lineage.order:
        m = lineage.models[name]
        for key, source in (("pretrained", m.pretrained), ("sae.pretrained", m.sae)):
            folder = source.local_folder(workdir) if source is not None else None
            if folder is None:
                continue
            if source.revision is not None:
                raise ConfigError(f"config key 'models.{name}.{key.replace('pretrained', 'revision')}' applies to hub ids "
                                  f"(owner/name); {source.source!r} is a local folder")
            if not folder.is_dir():
                raise ConfigError(f"config key 'models.{name}.{key}': {str(folder)!r} is neither a folder nor a hub id "
                                  "(owner/name)")
    for corpus in cfg["acts"].get("corpora") or []:
        if corpus not in cfg["corpora"]:
            raise ConfigError(f"config key 'acts.corpora': '{corpus}' is not a corpus (known: {', '.join(cfg['corpora'])})")


def _width_entries(cfg: dict[str, Any]) -> list[tuple[int, float | None]]:
    """`experiments.widths` as (factor, its own L1 coefficient or None for the lineage's), in config order."""
    return [(w["factor"], w["l1_coefficient"]) if isinstance(w, dict) else (w, None) for w in cfg["experiments"]["widths"]]


def width_l1_coefficients(cfg: dict[str, Any]) -> dict[int, float | None]:
    """`experiments.widths` as {factor: its own L1 coefficient, or None for the lineage's}."""
    return dict(_width_entries(cfg))


def _check_widths(cfg: dict[str, Any]) -> None:
    factors = [f for f, _ in _width_entries(cfg)]
    for f in factors:
        if factors.count(f) > 1:
            raise ConfigError(f"config key 'experiments.widths': x{f} is listed twice")
    own, l1 = cfg["sae"]["expansion_factor"], width_l1_coefficients(cfg).get(cfg["sae"]["expansion_factor"])
    if l1 is not None and l1 != cfg["sae"]["l1_coefficient"]:
        raise ConfigError(f"config key 'experiments.widths': x{own} is the lineage's own width, whose SAEs are reused; its "
                          f"L1 coefficient is sae.l1_coefficient ({cfg['sae']['l1_coefficient']}), not {l1}")


def merge_variants(cfg: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The siblings `experiments.merge_methods` adds: `<merged>-<method>` -> (merged model, method), for
    every configured merged model and every listed method other than its own."""
    methods = cfg["experiments"]["merge_methods"]
    merges = {name: spec for name, spec in cfg["models"].items() if "merge" in spec}
    siblings = {f"{name}-{method}" for name in merges for method in methods}
    return {f"{name}-{method}": (name, method) for name, spec in merges.items() if name not in siblings
            for method in methods if method != spec["method"]}


def _add_merge_variants(cfg: dict[str, Any]) -> None:
    """Add the compared methods' merged models to `models` (same inputs, t from their own sweep)."""
    for variant, (name, method) in merge_variants(cfg).items():
        if variant in cfg["models"]:
            if cfg["models"][variant].get("merge") == cfg["models"][name]["merge"] and cfg["models"][variant].get("method") == method:
                continue  # already added (a validated config passes through here again)
            raise ConfigError(f"config key 'models.{variant}': the name is taken; experiments.merge_methods names the "
                              f"{method} merge of '{name}' so")
        cfg["models"][variant] = {"merge": list(cfg["models"][name]["merge"]), "method": method, "t": "auto", "mix": "even"}
