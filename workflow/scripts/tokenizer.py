from featureflow.data import build_tokenizer, tokenizer_from_models
from featureflow.settings import TokenizerSettings, from_block
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    if hasattr(p, "model_dirs"):
        tokenizer_from_models(model_dirs=p.model_dirs, fallback=from_block(TokenizerSettings, p.settings), out_dir=p.out_dir)
    else:
        build_tokenizer(cfg=from_block(TokenizerSettings, p.settings), train_texts=list(snakemake.input.texts), out_dir=p.out_dir)
