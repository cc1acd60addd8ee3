from featureflow.interp import run_interp
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, i, model = snakemake.params, snakemake.input, snakemake.wildcards.model
    run_interp(model, i.edges, p.spec, i[f"stats_{model}"], i[f"acts_{model}"], i.sample, p.tokenizer_dir,
               p.settings, p.seed, p.cache_dir, snakemake.output[0], i.estimate)
