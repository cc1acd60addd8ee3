from featureflow.sae import train_sae
from featureflow.settings import SAESettings, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    train_sae(snakemake.wildcards.model, p.model_dir, list(snakemake.input.tokens), p.sae_dir, snakemake.output.train_log,
              p.checkpoints, from_block(SAESettings, p.settings), p.seed, job_resources(snakemake))
