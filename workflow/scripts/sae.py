from featureflow.sae import SAEFiles, train_sae, with_measured_k
from featureflow.settings import SAESettings, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    files = SAEFiles(model_dir=p.model_dir, token_files=list(snakemake.input.tokens), out_dir=p.sae_dir,
                     train_log=snakemake.output.train_log, ckpt_dir=p.checkpoints)
    settings = from_block(SAESettings, p.settings)
    if "l0_from" in snakemake.input.keys():  # the architectures experiment: k from the lineage SAE's L0
        settings = with_measured_k(s=settings, metrics_json=snakemake.input.l0_from)
    train_sae(name=snakemake.wildcards.model, files=files, settings=settings, seed=p.seed, resources=job_resources(snakemake))
