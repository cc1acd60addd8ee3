from featureflow.stage import stage_main
from featureflow.tokens import build_mixture

with stage_main(snakemake.log[0]):
    build_mixture(dict(snakemake.input.items()), snakemake.params.mode, snakemake.output.ids, snakemake.output.summary)
