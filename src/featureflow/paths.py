"""Every result path of the workflow, declared once.

The rules' ``output:`` and ``input:`` and the plan's targets both read these templates, so a file
is named in one place. A template's ``{name}`` parts are Snakemake wildcards: leave them unfilled
to get a rule pattern, fill them to get one file::

    paths = ResultPaths("results")
    paths("tokens")                                  # 'results/data/tokens/{corpus}/{split}.npy'
    paths("tokens", corpus="lua", split="train")     # 'results/data/tokens/lua/train.npy'
    paths("tokens", split="train")                   # 'results/data/tokens/{corpus}/train.npy'

The first folder of every template is the stage that writes it (stage = rule file = package =
log folder); ``checkpoints/{stage}/`` holds the resumable state of the training stages. The report
stage's pages sit at the top of the results folder, where a reader starts (``index.html``).
"""

from __future__ import annotations

from dataclasses import dataclass

from featureflow.criteria import CRITERIA

SPLITS = ("train", "validation")

# Files inside one folder, named by the formats the folders follow (a Hugging Face model or
# tokenizer folder, an SAELens SAE folder). Code that opens a folder takes the names from here.
MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"
GENERATION_CONFIG = "generation_config.json"
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_META = "tokenizer_meta.json"
TOKENIZER_FILES = (TOKENIZER_JSON, "tokenizer_config.json", "special_tokens_map.json", TOKENIZER_META)  # all of a tokenizer folder
SAE_WEIGHTS = "sae_weights.safetensors"
SAE_CFG = "cfg.json"
SAE_EXTRA = "featureflow_sae.json"
TRAIN_LOG = "train_log.csv"
TRAIN_META = "train_meta.json"
PRETRAINED_META = "pretrained.json"

TEMPLATES: dict[str, str] = {
    # data: corpora -> tokenizer -> token arrays -> training mixtures
    "corpus_text": "data/corpora/{corpus}/{split}.txt",
    "corpus_summary": "data/corpora/{corpus}/split.json",
    "tokenizer_dir": "data/tokenizer",
    "tokenizer_json": f"data/tokenizer/{TOKENIZER_JSON}",
    "tokenizer_meta": f"data/tokenizer/{TOKENIZER_META}",
    "tokens": "data/tokens/{corpus}/{split}.npy",
    "token_counts": "data/tokens/{corpus}/{split}.json",
    "token_summary": "data/tokens/summary.tsv",
    "mixture": "data/mixtures/{model}/{split}.npy",
    "mixture_summary": "data/mixtures/{model}/{split}.json",
    # lm: every model of the lineage (merged ones included) as a Hugging Face folder, the training curves
    "model_dir": "lm/{model}",
    "model_weights": f"lm/{{model}}/{MODEL_WEIGHTS}",
    "model_config": f"lm/{{model}}/{MODEL_CONFIG}",
    "train_log": f"lm/{{model}}/{TRAIN_LOG}",
    "train_meta": f"lm/{{model}}/{TRAIN_META}",
    "pretrained_meta": f"lm/{{model}}/{PRETRAINED_META}",
    "model_eval": "lm/{model}/eval.json",
    "eval_table": "lm/eval.tsv",
    "lm_curves_html": "lm/training_curves.html",
    "lm_curves_png": "lm/training_curves.png",
    "lm_checkpoints": "checkpoints/lm/{model}",
    # merge: the t sweep (Figure 5) and the chosen t of each merged model
    "merge_sweep": "merge/{model}/sweep.csv",
    "merge_sweep_summary": "merge/{model}/sweep.json",
    "merge_figure_html": "merge/{model}/fig5_merge_sweep.html",
    "merge_figure_png": "merge/{model}/fig5_merge_sweep.png",
    "merge_choice": "merge/{model}/choice.json",
    # sae: one SAELens-format SAE per model, its held-out metrics, the table of all, the training curves
    "sae_dir": "sae/{model}",
    "sae_weights": f"sae/{{model}}/{SAE_WEIGHTS}",
    "sae_cfg": f"sae/{{model}}/{SAE_CFG}",
    "sae_extra": f"sae/{{model}}/{SAE_EXTRA}",
    "sae_train_log": f"sae/{{model}}/{TRAIN_LOG}",
    "sae_metrics": "sae/{model}/metrics.json",
    "sae_density": "sae/{model}/feature_density.npy",
    "sae_density_html": "sae/{model}/feature_density.html",
    "sae_density_png": "sae/{model}/feature_density.png",
    "sae_table": "sae/metrics.tsv",
    "sae_curves_html": "sae/training_curves.html",
    "sae_curves_png": "sae/training_curves.png",
    "sae_checkpoints": "checkpoints/sae/{model}",
    # flow: common sample -> feature activations -> correlations per edge -> classes -> Sankey
    "sample": "flow/sample.npz",
    "acts": "flow/acts/{model}.npz",
    "corr": "flow/corr/{edge}.npz",
    "edges": "flow/edges.csv",
    "counts": "flow/counts.csv",
    "sankey_html": "flow/fig2_sankey.html",
    "sankey_png": "flow/fig2_sankey.png",
    # flow controls: the shuffle null per edge, a second SAE per model (seed ceiling), the threshold curve
    "null": "flow/null/{edge}.npz",
    "control_sae_dir": "flow/controls/sae_seed/{model}",
    "control_sae_weights": f"flow/controls/sae_seed/{{model}}/{SAE_WEIGHTS}",
    "control_sae_cfg": f"flow/controls/sae_seed/{{model}}/{SAE_CFG}",
    "control_sae_extra": f"flow/controls/sae_seed/{{model}}/{SAE_EXTRA}",
    "control_sae_train_log": f"flow/controls/sae_seed/{{model}}/{TRAIN_LOG}",
    "control_sae_checkpoints": "checkpoints/flow/sae_seed/{model}",
    "control_acts": "flow/controls/sae_seed/{model}/acts.npz",
    "control_corr": "flow/controls/sae_seed/{model}/corr.npz",
    # the comparison of the matching criteria (their per-edge files: featureflow.criteria, added below)
    "criteria": "flow/criteria.csv",
    "threshold_curve": "flow/threshold_curve.csv",
    "threshold_curve_html": "flow/threshold_curve.html",
    "threshold_curve_png": "flow/threshold_curve.png",
    # experiments: merge methods compared; each parent's features along the merge path of a merged model
    "merge_methods": "flow/merge_methods.csv",
    "merge_methods_html": "flow/merge_methods.html",
    "merge_methods_png": "flow/merge_methods.png",
    "merge_path": "flow/merge_path/{model}.csv",
    "merge_path_html": "flow/merge_path/{model}.html",
    "merge_path_png": "flow/merge_path/{model}.png",
    # experiment: dictionary widths (SAEs of other widths per model; the lineage's own width is in sae/ and flow/)
    "width_sae_dir": "flow/widths/x{width}/sae/{model}",
    "width_sae_weights": f"flow/widths/x{{width}}/sae/{{model}}/{SAE_WEIGHTS}",
    "width_sae_cfg": f"flow/widths/x{{width}}/sae/{{model}}/{SAE_CFG}",
    "width_sae_extra": f"flow/widths/x{{width}}/sae/{{model}}/{SAE_EXTRA}",
    "width_sae_train_log": f"flow/widths/x{{width}}/sae/{{model}}/{TRAIN_LOG}",
    "width_sae_metrics": "flow/widths/x{width}/sae/{model}/metrics.json",
    "width_sae_density": "flow/widths/x{width}/sae/{model}/feature_density.npy",
    "width_sae_density_html": "flow/widths/x{width}/sae/{model}/feature_density.html",
    "width_sae_density_png": "flow/widths/x{width}/sae/{model}/feature_density.png",
    "width_sae_checkpoints": "checkpoints/flow/widths/x{width}/sae/{model}",
    "width_acts": "flow/widths/x{width}/acts/{model}.npz",
    "width_corr": "flow/widths/x{width}/corr/{edge}.npz",
    # ... with the seed ceiling at each width (controls.sae_seed): a second SAE of another seed per model
    "width_seed_sae_weights": f"flow/widths/x{{width}}/sae_seed/{{model}}/{SAE_WEIGHTS}",
    "width_seed_sae_cfg": f"flow/widths/x{{width}}/sae_seed/{{model}}/{SAE_CFG}",
    "width_seed_sae_extra": f"flow/widths/x{{width}}/sae_seed/{{model}}/{SAE_EXTRA}",
    "width_seed_sae_train_log": f"flow/widths/x{{width}}/sae_seed/{{model}}/{TRAIN_LOG}",
    "width_seed_sae_checkpoints": "checkpoints/flow/widths/x{width}/sae_seed/{model}",
    "width_seed_acts": "flow/widths/x{width}/sae_seed/{model}/acts.npz",
    "width_seed_corr": "flow/widths/x{width}/sae_seed/{model}/corr.npz",
    # experiment: SAE architectures (SAEs of other architectures per model at the lineage's width)
    "arch_sae_dir": "flow/architectures/{arch}/sae/{model}",
    "arch_sae_weights": f"flow/architectures/{{arch}}/sae/{{model}}/{SAE_WEIGHTS}",
    "arch_sae_cfg": f"flow/architectures/{{arch}}/sae/{{model}}/{SAE_CFG}",
    "arch_sae_extra": f"flow/architectures/{{arch}}/sae/{{model}}/{SAE_EXTRA}",
    "arch_sae_train_log": f"flow/architectures/{{arch}}/sae/{{model}}/{TRAIN_LOG}",
    "arch_sae_metrics": "flow/architectures/{arch}/sae/{model}/metrics.json",
    "arch_sae_density": "flow/architectures/{arch}/sae/{model}/feature_density.npy",
    "arch_sae_density_html": "flow/architectures/{arch}/sae/{model}/feature_density.html",
    "arch_sae_density_png": "flow/architectures/{arch}/sae/{model}/feature_density.png",
    "arch_sae_checkpoints": "checkpoints/flow/architectures/{arch}/sae/{model}",
    "arch_acts": "flow/architectures/{arch}/acts/{model}.npz",
    "arch_corr": "flow/architectures/{arch}/corr/{edge}.npz",
    "arch_seed_sae_weights": f"flow/architectures/{{arch}}/sae_seed/{{model}}/{SAE_WEIGHTS}",
    "arch_seed_sae_cfg": f"flow/architectures/{{arch}}/sae_seed/{{model}}/{SAE_CFG}",
    "arch_seed_sae_extra": f"flow/architectures/{{arch}}/sae_seed/{{model}}/{SAE_EXTRA}",
    "arch_seed_sae_train_log": f"flow/architectures/{{arch}}/sae_seed/{{model}}/{TRAIN_LOG}",
    "arch_seed_sae_checkpoints": "checkpoints/flow/architectures/{arch}/sae_seed/{model}",
    "arch_seed_acts": "flow/architectures/{arch}/sae_seed/{model}/acts.npz",
    "arch_seed_corr": "flow/architectures/{arch}/sae_seed/{model}/corr.npz",
    "architectures": "flow/architectures.csv",
    "architectures_saes": "flow/architectures_saes.csv",
    "architectures_html": "flow/architectures.html",
    "architectures_png": "flow/architectures.png",
    "widths": "flow/widths.csv",
    "widths_saes": "flow/widths_saes.csv",
    "widths_html": "flow/widths.html",
    "widths_png": "flow/widths.png",
    # analysis: per-feature statistics and LLRs, the case studies (Figures 3 and 4)
    "feature_stats": "analysis/{model}/features.npz",
    "feature_table": "analysis/{model}/features.csv",
    "case_studies": "analysis/case_studies.json",
    "fig3_html": "analysis/fig3_persisting_feature.html",
    "fig4_html": "analysis/fig4_disappearing_feature.html",
    # browser: the offline feature browser (analysis stage; its own folder, as users open it directly)
    "browser_script": "browser/assets/browser.js",
    "browser_threshold": "browser/assets/threshold.js",
    "browser_index": "browser/{model}/index.html",
    "browser_feature": "browser/{model}/feature.html",
    # interp: autointerp through an OpenAI-compatible endpoint (Figure 6), or only its cost estimate
    "interp_estimate": "interp/estimate.json",
    "interp_jsonl": "interp/{model}.jsonl",
    "interp_cache": "interp/cache",
    "interp_summary": "interp/summary.json",
    "interp_fig6_html": "interp/fig6_scores.html",
    "interp_fig6_png": "interp/fig6_scores.png",
    # report: the reproduction table (paper vs this run) and the landing page, at the top of results/
    "reproduction_md": "reproduction.md",
    "reproduction_html": "reproduction.html",
    "landing": "index.html",
}
TEMPLATES |= {c.result: c.path for c in CRITERIA.values() if c.path}  # a criterion's own per-edge file


class _KeepMissing(dict):
    """format_map mapping that leaves wildcards it was not given as `{name}`."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class ResultPaths:
    """Result paths under one results folder."""

    root: str

    def __call__(self, key: str, **wildcards: str) -> str:
        """The path of result `key`, with the given wildcards filled in and the others left as `{name}`."""
        try:
            template = TEMPLATES[key]
        except KeyError:
            raise KeyError(f"no result path named {key!r}") from None
        return f"{self.root}/{template.format_map(_KeepMissing(wildcards))}"

    def log(self, stage: str, name: str) -> str:
        """Log file of one job: `{root}/logs/{stage}/{name}.log` (`name` may hold wildcards)."""
        return f"{self.root}/logs/{stage}/{name}.log"

    def benchmark(self, stage: str, name: str) -> str:
        """Time and memory of one job, written by Snakemake's `benchmark:`."""
        return f"{self.root}/benchmarks/{stage}/{name}.tsv"
