from pathlib import Path

from featureflow.feature_acts import compute_feature_acts
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    i, p = snakemake.input, snakemake.params
    compute_feature_acts(snakemake.wildcards.model, Path(i.weights).parent, Path(i.sae).parent, i.sample, p.hook,
                         snakemake.output[0], p.device, p.batch_tokens, snakemake.threads)
