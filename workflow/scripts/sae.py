from pathlib import Path

from featureflow.sae_train import train_sae
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, Path(snakemake.output.weights).parent
    train_sae(snakemake.wildcards.model, Path(snakemake.input.weights).parent, list(snakemake.input.tokens), p.hook, p.settings,
              p.seed, out, out.parent.parent / "checkpoints" / f"sae_{snakemake.wildcards.model}", threads=snakemake.threads, **p.run)
