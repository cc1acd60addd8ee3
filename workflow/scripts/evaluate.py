from featureflow.lm import evaluate_model
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    evaluate_model(p.model_dir, p.validation, snakemake.output[0], p.max_tokens, p.batch_size, job_resources(snakemake))
