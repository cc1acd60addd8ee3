from featureflow.report import write_report
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, o = snakemake.params, snakemake.output
    write_report(p.files, p.spec, p.sample_tokens, p.sections, p.results_dir, o.md, o.html, o.index)
