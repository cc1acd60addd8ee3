from featureflow.flow import classify
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    classify(p.files, p.spec, p.threshold, out.edges, out.counts)
