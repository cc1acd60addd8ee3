from featureflow.data import summarise_counts
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    summarise_counts(snakemake.params.counts, snakemake.output[0])
