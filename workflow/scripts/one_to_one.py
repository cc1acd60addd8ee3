from featureflow.flow import write_one_to_one
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    write_one_to_one(corr_npz=snakemake.input[0], out_npz=snakemake.output[0], edge=snakemake.wildcards.edge)
