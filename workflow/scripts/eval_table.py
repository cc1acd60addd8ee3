import json
from pathlib import Path

from featureflow.lm import EvalShape, eval_table
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    vocab = json.loads(Path(snakemake.input.tokenizer).read_text())["vocab_size"]
    eval_table(eval_files=dict(zip(p.models, snakemake.input.evals, strict=True)), validation=p.validation, baselines=p.baselines,
               shape=EvalShape(vocab_size=vocab, block_size=p.block_size, max_tokens=p.max_tokens), out_tsv=snakemake.output[0])
