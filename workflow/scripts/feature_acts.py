from featureflow.flow import FeatureSource, compute_feature_acts
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    i, p = snakemake.input, snakemake.params
    compute_feature_acts(model=snakemake.wildcards.model, source=FeatureSource(model_dir=p.model_dir, sae_dir=p.sae_dir, hook_name=p.hook),
                         sample_npz=i.sample, out_npz=snakemake.output[0], batch_tokens=p.batch_tokens,
                         resources=job_resources(snakemake))
