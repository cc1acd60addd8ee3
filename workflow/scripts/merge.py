from featureflow.merge import MergedFiles, MergeSpec, build_merged
from featureflow.settings import MergeSettings, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    build_merged(name=snakemake.wildcards.model, spec=MergeSpec(**p.spec),
                 files=MergedFiles(sweep_json=snakemake.input.summary, out_dir=p.model_dir, choice_json=out.choice),
                 settings=from_block(MergeSettings, p.settings), batch_size=p.batch_size, resources=job_resources(snakemake))
