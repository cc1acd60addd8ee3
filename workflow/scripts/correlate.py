from featureflow.correlate import correlate_edge
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    correlate_edge(snakemake.input.source, snakemake.input.target, snakemake.output[0], p.method, p.top_k, snakemake.threads)
