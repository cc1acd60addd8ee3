# Report stage (featureflow.report, the top of results/): the reproduction table (every number the
# paper reports beside this run's, with the run's scale) and the landing page that links every
# figure, table and browser page. `snakemake --report` adds Snakemake's own report (the outputs
# marked with report() in the other rule files, captions in workflow/report/).

from featureflow.report import landing_sections, report_inputs


localrules:
    report,


rule report:
    input:
        lambda w: report_inputs(PLAN),
    output:
        md=P("reproduction_md"),
        html=report(P("reproduction_html"), caption="../report/reproduction.rst", category="0. Reproduction"),
        index=P("landing"),
    params:
        files=PLAN.report_files(),
        sections=landing_sections(PLAN),
        spec=PLAN.flow_spec(),
        sample_tokens=PLAN.acts.tokens // PLAN.acts.context_size * PLAN.acts.context_size,
        results_dir=out_dir("index"),
    log:
        P.log("report", "report"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/report.py"
