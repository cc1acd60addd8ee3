from featureflow.flow import write_criteria_table
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    write_criteria_table(files=snakemake.params.files, counts_csv=snakemake.input.counts, out_csv=snakemake.output[0])
