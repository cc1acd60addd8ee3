from pathlib import Path

from featureflow.evaluate import evaluate_model
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    validation = {c: f for c, f in zip(p.corpora, snakemake.input.validation)}
    evaluate_model(Path(snakemake.input.weights).parent, validation, snakemake.output[0], p.max_tokens, p.batch_size, p.device, snakemake.threads)
