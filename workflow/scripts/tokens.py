from featureflow.data import tokenize_split
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    tokenize_split(text_path=snakemake.input.text, tok_dir=snakemake.params.tokenizer_dir, out_npy=snakemake.output.ids,
                   out_json=snakemake.output.counts, threads=snakemake.threads)
