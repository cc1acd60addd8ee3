from featureflow.flow import classify
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    classify(corr_files=p.files, spec=p.spec, threshold=p.threshold, controls=p.controls, out_edges=out.edges, out_counts=out.counts)
