from featureflow.flow import draw_common_sample, save_sample
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    save_sample(draw_common_sample(p.files, p.tokens, p.context_size, p.seed), snakemake.output[0])
