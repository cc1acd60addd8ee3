from featureflow.data import tokenize_split
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    tokenize_split(snakemake.input.text, snakemake.params.tokenizer_dir, snakemake.output.ids, snakemake.output.counts,
                   threads=snakemake.threads)
