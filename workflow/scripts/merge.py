from featureflow.merge import MergeSpec, build_merged
from featureflow.settings import MergeSettings, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    build_merged(snakemake.wildcards.model, MergeSpec(**p.spec), snakemake.input.summary, p.model_dir, out.choice,
                 from_block(MergeSettings, p.settings), p.batch_size, job_resources(snakemake))
