from pathlib import Path

from featureflow.stage import stage_main
from featureflow.tokens import tokenize_split

with stage_main(snakemake.log[0]):
    tokenize_split(snakemake.input.text, Path(snakemake.input.meta).parent, snakemake.output.ids, snakemake.output.counts)
