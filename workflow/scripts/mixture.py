from featureflow.data import build_mixture
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    build_mixture(dict(snakemake.input.items()), snakemake.params.mode, snakemake.output.ids, snakemake.output.summary)
