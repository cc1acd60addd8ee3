from featureflow.flow import correlate_edge
from featureflow.settings import CorrelationSettings, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    correlate_edge(snakemake.input.source, snakemake.input.target, snakemake.output[0],
                   from_block(CorrelationSettings, p.settings), job_resources(snakemake))
