from featureflow.report import ReportPages, write_report
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, o = snakemake.params, snakemake.output
    write_report(files=p.files, spec=p.spec, sample_tokens=p.sample_tokens, sections=p.sections, results_dir=p.results_dir,
                 pages=ReportPages(md=o.md, html=o.html, index=o.index))
