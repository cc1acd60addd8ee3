from featureflow.analysis import write_threshold
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    write_threshold(path=snakemake.output[0], threshold=snakemake.params.threshold,
                    counts_csv=snakemake.input.counts[0] if snakemake.input.counts else None)
