import json
from pathlib import Path

from featureflow.lm import eval_table
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    vocab = json.loads(Path(snakemake.input.tokenizer).read_text())["vocab_size"]
    eval_table(dict(zip(p.models, snakemake.input.evals, strict=True)), p.validation, p.baselines, vocab, p.block_size, p.max_tokens,
               snakemake.output[0])
