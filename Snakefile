# Feature-lineage workflow: train a lineage of small LMs, merge them, train one SAE per model and
# track which features persist, emerge or disappear along every edge of the lineage.
#
# results/ (see README.md for the full tree)
#   corpora/{corpus}/{train,validation}.txt   split text           tokenizer/   HF tokenizer
#   tokens/{corpus}/{split}.npy               token ids            mixtures/{model}/{split}.npy
#   models/{model}/   merge/{model}/          LMs, merge sweep     saes/{model}/  SAELens-format SAEs
#   acts/{model}.npz  corr/{a}__{b}.npz        features, matches    flow/          classes, counts, Sankey
#   logs/<stage>/...   benchmarks/<stage>/...
#
# The lineage, corpora and every setting live in config.yaml (validated against
# workflow/schemas/config.schema.yaml); nothing below names a model or corpus.

configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/lm.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/sae.smk"
include: "workflow/rules/flow.smk"


rule all:
    input:
        final_targets(),
    default_target: True
