from featureflow.sae import SAEFiles, train_sae
from featureflow.settings import SAESettings, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    files = SAEFiles(model_dir=p.model_dir, token_files=list(snakemake.input.tokens), out_dir=p.sae_dir,
                     train_log=snakemake.output.train_log, ckpt_dir=p.checkpoints)
    train_sae(name=snakemake.wildcards.model, files=files, settings=from_block(SAESettings, p.settings), seed=p.seed,
              resources=job_resources(snakemake))
