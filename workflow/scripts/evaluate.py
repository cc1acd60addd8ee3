from featureflow.lm import ValidationSet, evaluate_model
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    evaluate_model(model_dir=p.model_dir, validation=ValidationSet(files=p.validation, block_size=p.block_size, max_tokens=p.max_tokens),
                   out_json=snakemake.output[0], batch_size=p.batch_size, resources=job_resources(snakemake))
