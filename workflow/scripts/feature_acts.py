from featureflow.flow import compute_feature_acts
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    i, p = snakemake.input, snakemake.params
    compute_feature_acts(snakemake.wildcards.model, p.model_dir, p.sae_dir, i.sample, snakemake.output[0], p.hook,
                         p.batch_tokens, job_resources(snakemake))
