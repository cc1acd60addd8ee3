# Controls (featureflow.flow.controls, results/flow/): yardsticks for "persisting". The shuffle null
# per lineage edge; a second SAE of another seed per model (rule sae with its own files), its
# activations (feature_acts) and its correlation with the model's own SAE (correlate); the
# threshold curve that reads them all.


rule null:
    input:
        unpack(lambda w: PLAN.edge_acts(w.edge)),
    output:
        P("null"),
    params:
        settings=as_params(PLAN.correlation),
        permutations=PLAN.null_permutations,
        seed=PLAN.seed,
        device=job("cpu_eval").device,
    log:
        P.log("flow", "null/{edge}"),
    benchmark:
        P.benchmark("flow", "null/{edge}")
    threads: job("cpu_eval").threads
    resources:
        **job("cpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/null.py"


use rule sae as sae_seed_control with:
    output:
        **sae_files("control_sae"),
    wildcard_constraints:
        model=only(LINEAGE.order),  # every model: sae's own constraint keeps the trained ones
    params:
        checkpoints=lambda w: P("control_sae_checkpoints", model=w.model),
        seed=lambda w: PLAN.sae_seed_control_seed(w.model),
    log:
        P.log("flow", "sae_seed/{model}"),
    benchmark:
        P.benchmark("flow", "sae_seed/{model}")


use rule feature_acts as control_acts with:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("control_sae_weights"),
    output:
        P("control_acts"),
    log:
        P.log("flow", "control_acts/{model}"),
    benchmark:
        P.benchmark("flow", "control_acts/{model}")


use rule correlate as sae_seed_corr with:
    input:
        source=P("acts"),
        target=P("control_acts"),
    output:
        P("control_corr"),
    log:
        P.log("flow", "sae_seed_corr/{model}"),
    benchmark:
        P.benchmark("flow", "sae_seed_corr/{model}")


rule threshold_curve:
    input:
        corr=list(PLAN.correlation_files().values()),
        controls=PLAN.control_inputs(),
    output:
        csv=P("threshold_curve"),
        **figure("threshold_curve_html", "threshold_curve_png", caption="../report/threshold_curve.rst", category="5. Feature flow"),
    params:
        files=PLAN.correlation_files(),
        controls=PLAN.control_files(),
    log:
        P.log("flow", "threshold_curve"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/threshold_curve.py"
