from featureflow.stage import stage_main
from featureflow.tokens import summarise_counts

with stage_main(snakemake.log[0]):
    summarise_counts(list(snakemake.input), snakemake.output[0])
