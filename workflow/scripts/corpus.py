from pathlib import Path

from featureflow.corpus import prepare_corpus
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    out_dir = Path(snakemake.output.train).parent
    prepare_corpus(snakemake.wildcards.corpus, snakemake.params.spec, snakemake.params.seed, out_dir)
