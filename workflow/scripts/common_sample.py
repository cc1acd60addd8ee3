from featureflow.flow import draw_common_sample, save_sample
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    sample = draw_common_sample(token_files=p.files, n_tokens=p.tokens, context_size=p.context_size, seed=p.seed)
    save_sample(sample=sample, out_npz=snakemake.output[0])
