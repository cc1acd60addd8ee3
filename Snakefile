# Feature-lineage workflow: train a lineage of small LMs, merge them, train one SAE per model and
# track which features persist, emerge or disappear along every edge of the lineage.
#
# results/ (docs/outputs.md has the full tree): one folder per stage, named like its rule file and package
#   data/  corpora, tokenizer, tokens, mixtures      lm/    every model + evaluations
#   merge/ t sweeps, chosen t (Figure 5)             sae/   SAELens-format SAEs + metrics
#   flow/  sample, activations, correlations, classes, Sankey (Figure 2); controls, criteria, experiments
#   analysis/ feature statistics, case studies (Figures 3, 4)   browser/ the offline feature browser
#   interp/ autointerp or its cost estimate (Figure 6)      index.html, reproduction.{md,html} (report)
#   logs/{stage}/...  benchmarks/{stage}/...  checkpoints/{lm,sae}/  (result paths: src/featureflow/paths.py)
#
# The lineage, corpora and every setting live in config.yaml (validated against
# workflow/schemas/config.schema.yaml); nothing below names a model or corpus.

configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/lm.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/sae.smk"
include: "workflow/rules/flow.smk"
# Also into flow/: controls, other matching criteria, experiments. Their variants of sae.smk's and
# flow.smk's rules (`use rule X as Y with:`) need those files included first.
include: "workflow/rules/controls.smk"
include: "workflow/rules/criteria.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/architectures.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/interp.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        final_targets(),
    default_target: True
