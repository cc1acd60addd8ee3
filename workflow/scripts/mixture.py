from featureflow.data import build_mixture
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    build_mixture(token_files=dict(snakemake.input.items()), mode=snakemake.params.mode, out_npy=snakemake.output.ids,
                  out_json=snakemake.output.summary)
