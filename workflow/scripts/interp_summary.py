from featureflow.interp import write_summary
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    out = snakemake.output
    write_summary(snakemake.params.files, snakemake.params.settings, out.summary, out.html, out.png)
