from featureflow.flow import write_decoder_cosine
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    write_decoder_cosine(sae_a=snakemake.params.source_dir, sae_b=snakemake.params.target_dir, out_npz=snakemake.output[0],
                         top_k=snakemake.params.top_k, edge=snakemake.wildcards.edge)
