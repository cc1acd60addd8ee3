# Autointerp stage (featureflow.interp, results/interp/): what explaining the selected features
# would cost (always, no endpoint needed), and with `interp.enabled` the explanations and scores
# through an OpenAI-compatible endpoint, Figure 6 and the category summary. Requests are cached
# in results/interp/cache/ (not an output: a rerun or a resumed run pays for nothing twice).


rule interp_estimate:
    input:
        **PLAN.interp_files().as_input(),
    output:
        report(P("interp_estimate"), caption="../report/interp_estimate.rst", category="7. Autointerp"),
    params:
        layout=PLAN.interp_files().layout(),
        settings=as_params(PLAN.interp.cost()),
        spec=PLAN.flow_spec(),
        seed=PLAN.seed,
    log:
        P.log("interp", "interp_estimate"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/interp_estimate.py"


rule interp:
    input:
        unpack(lambda w: PLAN.interp_files(w.model).as_input()),
    output:
        P("interp_jsonl"),
    params:
        layout=lambda w: PLAN.interp_files(w.model).layout(),
        settings=as_params(PLAN.interp, without=InterpSettings.RUN_ONLY),
        spec=PLAN.flow_spec(),
        seed=PLAN.seed,
        cache_dir=P("interp_cache"),
    log:
        P.log("interp", "interp/{model}"),
    benchmark:
        P.benchmark("interp", "interp/{model}")
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/interp.py"


rule interp_summary:
    input:
        expand(P("interp_jsonl"), model=LINEAGE.order),
    output:
        summary=report(P("interp_summary"), caption="../report/interp_summary.rst", category="7. Autointerp"),
        **figure("interp_fig6_html", "interp_fig6_png", caption="../report/fig6.rst", category="7. Autointerp"),
    params:
        endpoint_model=PLAN.interp.model,
        files={m: P("interp_jsonl", model=m) for m in LINEAGE.order},
    log:
        P.log("interp", "interp_summary"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/interp_summary.py"
