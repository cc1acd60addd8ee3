from featureflow.data import build_tokenizer
from featureflow.settings import TokenizerSettings, from_block
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    build_tokenizer(cfg=from_block(TokenizerSettings, p.settings), train_texts=list(snakemake.input), out_dir=p.out_dir)
