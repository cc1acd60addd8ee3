from pathlib import Path

from featureflow.merge import build_merged
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    spec, out = snakemake.params.spec, snakemake.output
    build_merged(snakemake.wildcards.model, spec["first"], spec["second"], spec["dirs"], spec["method"], spec["t"],
                 snakemake.input.summary, spec["own_validation"], spec["base"], Path(out.weights).parent, out.choice,
                 snakemake.params.eval_tokens, threads=snakemake.threads, **snakemake.params.run)
