from featureflow.data import summarise_counts
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    summarise_counts(count_files=snakemake.params.counts, out_tsv=snakemake.output[0])
