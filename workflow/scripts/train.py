from featureflow.lm import ParentModel, TrainFiles, train_model
from featureflow.settings import TrainJob, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    files = TrainFiles(mixture_npy=snakemake.input.mixture, tokenizer_dir=p.tokenizer_dir, out_dir=p.model_dir,
                       train_log=out.train_log, train_meta=out.meta, ckpt_dir=p.checkpoints)
    parent = ParentModel(model_dir=p.parent_dir, name=p.parent) if p.parent_dir is not None else None
    train_model(name=snakemake.wildcards.model, files=files, settings=from_block(TrainJob, p.settings), seed=p.seed,
                resources=job_resources(snakemake), parent=parent)
