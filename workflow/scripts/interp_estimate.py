from featureflow.interp import write_estimate
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, i = snakemake.params, snakemake.input
    models = list(p.spec["inputs"])
    write_estimate(i.edges, p.spec, {m: i[f"stats_{m}"] for m in models}, {m: i[f"acts_{m}"] for m in models}, i.sample,
                   p.tokenizer_dir, p.settings, p.seed, snakemake.output[0])
