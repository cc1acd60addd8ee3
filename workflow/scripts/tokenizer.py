from pathlib import Path

from featureflow.stage import stage_main
from featureflow.tokenizer import build_tokenizer

with stage_main(snakemake.log[0]):
    build_tokenizer(dict(snakemake.params.cfg), list(snakemake.input), Path(snakemake.output.meta).parent)
