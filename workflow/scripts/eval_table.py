import json
from pathlib import Path

from featureflow.evaluate import eval_table
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, tok = snakemake.params, Path(snakemake.input.tokens[0]).parent.parent
    corpus_tokens = {c: (tok / c / "train.npy", tok / c / "validation.npy") for c in p.corpora}
    vocab = json.loads(Path(snakemake.input.tokenizer).read_text())["vocab_size"]
    eval_table(dict(zip(p.models, snakemake.input.evals)), corpus_tokens, vocab, p.block_size, p.max_tokens, snakemake.output[0])
