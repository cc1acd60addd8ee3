from pathlib import Path

from featureflow.stage import stage_main
from featureflow.train import train_model

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, Path(snakemake.output.weights).parent
    parent_dir = out.parent / p.parent if p.parent else None
    train_model(snakemake.wildcards.model, snakemake.input.mixture, Path(snakemake.input.tokenizer).parent, out,
                out.parent.parent / "checkpoints" / snakemake.wildcards.model, p.arch, p.settings, p.seed,
                parent_dir=parent_dir, parent=p.parent, threads=snakemake.threads, **p.run)
