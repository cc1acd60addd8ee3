# Analysis stage (featureflow.analysis, results/analysis/): what every feature does on the common
# sample (statistics, top contexts and tokens, LLRs; threshold-free), and the paper's two case
# studies (Figures 3 and 4), which follow features along the classes at the threshold.


rule feature_stats:
    input:
        unpack(lambda w: PLAN.feature_stats_files(w.model).as_input()),
    output:
        stats=P("feature_stats"),
        table=P("feature_table"),
    params:
        layout=lambda w: PLAN.feature_stats_files(w.model).layout(),
        settings=as_params(PLAN.analysis.feature_stats()),
        hook=PLAN.sae.hook,
    log:
        P.log("analysis", "feature_stats/{model}"),
    benchmark:
        P.benchmark("analysis", "feature_stats/{model}")
    threads: job("cpu_eval").threads
    resources:
        **job("cpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/feature_stats.py"


rule case_studies:
    input:
        **PLAN.case_study_files().as_input(),
    output:
        json=report(P("case_studies"), caption="../report/case_studies.rst", category="6. Case studies"),
        fig3=report(P("fig3_html"), caption="../report/fig3.rst", category="6. Case studies"),
        fig4=report(P("fig4_html"), caption="../report/fig4.rst", category="6. Case studies"),
    params:
        layout=PLAN.case_study_files().layout(),
        spec=PLAN.flow_spec(),
        settings=as_params(PLAN.analysis.case_studies),
        sample_files=PLAN.common_sample_files(),
    log:
        P.log("analysis", "case_studies"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/case_studies.py"


rule browser:
    input:
        **PLAN.browser_files().as_input(),
    output:
        script=P("browser_script"),
        index=expand(P("browser_index"), model=LINEAGE.order),
        feature=expand(P("browser_feature"), model=LINEAGE.order),
    params:
        layout=PLAN.browser_files().layout(),
        spec=PLAN.flow_spec(),
        settings=as_params(PLAN.analysis.browser()),
        out_dir=lambda w, output: str(Path(output.script).parents[1]),
    log:
        P.log("analysis", "browser"),
    benchmark:
        P.benchmark("analysis", "browser")
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/browser.py"


localrules:
    browser_threshold,


# The browser's data are threshold-free: the pages work out each class from the partners'
# correlations, so a new threshold rewrites this one small file and nothing else of the browser.
rule browser_threshold:
    input:
        counts=[P("counts")] if PLAN.threshold_from_null else [],
    output:
        P("browser_threshold"),
    params:
        threshold=PLAN.threshold,
    log:
        P.log("analysis", "browser_threshold"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/browser_threshold.py"
