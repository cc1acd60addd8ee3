from featureflow.flow import sankey_figure
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    sankey_figure(snakemake.input.edges, snakemake.input.counts, p.spec, out.html, out.png)
