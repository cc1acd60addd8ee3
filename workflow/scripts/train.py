from featureflow.lm import train_model
from featureflow.settings import TrainJob, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    train_model(snakemake.wildcards.model, snakemake.input.mixture, p.tokenizer_dir, p.model_dir, out.train_log, out.meta,
                p.checkpoints, from_block(TrainJob, p.settings), p.seed, job_resources(snakemake),
                parent_dir=p.parent_dir, parent=p.parent)
