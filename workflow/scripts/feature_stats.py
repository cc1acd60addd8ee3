from featureflow.analysis import write_feature_stats
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    settings = dict(p.settings)
    write_feature_stats(snakemake.wildcards.model, snakemake.input.acts, p.tokenizer_dir, settings.pop("hypotheses"), settings,
                        out.stats, out.table, p.model_dir, p.sae_dir, p.hook)
