# Flow stage (featureflow.flow, results/flow/): activations on a common sample, exact correlation
# per lineage edge, classes at the threshold, and the Sankey diagram. `threshold` is read by
# classify only (the Sankey takes it from counts.csv), so a new threshold reruns classify and
# sankey and nothing above them. Controls, other matching criteria and the experiments write into
# results/flow/ too: controls.smk, criteria.smk, experiments.smk.


rule common_sample:
    input:
        lambda w: list(PLAN.common_sample_files().values()),
    output:
        P("sample"),
    params:
        files=PLAN.common_sample_files(),
        tokens=PLAN.acts.tokens,
        context_size=PLAN.acts.context_size,
        seed=PLAN.seed,
    log:
        P.log("flow", "common_sample"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/common_sample.py"


rule feature_acts:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("sae_weights"),
    output:
        P("acts"),
    params:
        hook=PLAN.sae.hook,
        batch_tokens=PLAN.acts.batch_tokens,
        model_dir=in_dir("weights"),
        sae_dir=in_dir("sae"),
        device=job("gpu_eval").device,
    log:
        P.log("flow", "feature_acts/{model}"),
    benchmark:
        P.benchmark("flow", "feature_acts/{model}")
    threads: job("gpu_eval").threads
    resources:
        **job("gpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/feature_acts.py"


rule correlate:
    input:
        unpack(lambda w: PLAN.edge_acts(w.edge)),
    output:
        P("corr"),
    params:
        settings=as_params(PLAN.correlation),
        device=job("cpu_eval").device,
    log:
        P.log("flow", "correlate/{edge}"),
    benchmark:
        P.benchmark("flow", "correlate/{edge}")
    threads: job("cpu_eval").threads
    resources:
        **job("cpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/correlate.py"


rule classify:
    input:
        matches=list(PLAN.classify_files().values()),
        controls=PLAN.control_inputs(),
    output:
        edges=P("edges"),
        counts=report(P("counts"), caption="../report/counts.rst", category="5. Feature flow"),
    params:
        threshold=PLAN.threshold,
        files=PLAN.classify_files(),
        controls=PLAN.control_files(),
        spec=PLAN.flow_spec(),
    log:
        P.log("flow", "classify"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/classify.py"


rule sankey:
    input:
        edges=P("edges"),
        counts=P("counts"),
    output:
        **figure("sankey_html", "sankey_png", caption="../report/fig2.rst", category="5. Feature flow"),
    params:
        spec=PLAN.flow_spec(),
    log:
        P.log("flow", "sankey"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/sankey.py"
