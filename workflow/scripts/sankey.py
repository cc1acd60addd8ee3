from featureflow.flow import sankey_figure
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    sankey_figure(edges_csv=snakemake.input.edges, counts_csv=snakemake.input.counts, spec=p.spec, out_html=out.html, out_png=out.get("png"))
