# SAE stage (featureflow.sae, results/sae/): train one SAE per model, evaluate it on held-out
# tokens, gather the metrics; draw the training curves (featureflow.curves).


localrules:
    sae_curves,
    import_sae,


rule sae:
    input:
        weights=P("model_weights"),
        tokens=lambda w: PLAN.lineage_token_files(w.model, "train"),
    output:
        **sae_files("sae"),
    wildcard_constraints:
        model=only(PLAN.trained_saes()),
    params:
        settings=as_params(PLAN.sae),
        model_dir=in_dir("weights"),
        sae_dir=out_dir("weights"),
        checkpoints=lambda w: P("sae_checkpoints", model=w.model),
        seed=lambda w: PLAN.sae_seed(w.model),
        device=job("sae").device,
        compile=job("sae").compile,
    log:
        P.log("sae", "sae/{model}"),
    benchmark:
        P.benchmark("sae", "sae/{model}")
    threads: job("sae").threads
    resources:
        **job("sae").resources,
    conda:
        ENV
    script:
        "../scripts/sae.py"


# SAEs trained elsewhere (SAELens format), imported where snakemake runs (it may fetch from the hub):
# checked against the model's hook and width, converted to the saved form of a trained SAE.
rule import_sae:
    input:
        config=P("model_config"),
        files=lambda w: PLAN.pretrained_files(w.model, sae=True),
    output:
        **sae_files("sae"),
    wildcard_constraints:
        model=only(LINEAGE.imported_saes),
    params:
        source=lambda w: PLAN.sae_source(w.model),
        hook=PLAN.sae.hook,
        hub_cache=PLAN.data_cache,
        sae_dir=out_dir("weights"),
    log:
        P.log("sae", "import_sae/{model}"),
    benchmark:
        P.benchmark("sae", "import_sae/{model}")
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/import_sae.py"


rule sae_eval:
    input:
        sae=P("sae_weights"),
        weights=P("model_weights"),
        tokens=lambda w: PLAN.lineage_token_files(w.model, "validation"),
    output:
        metrics=P("sae_metrics"),
        density=P("sae_density"),
        **figure("sae_density_html", "sae_density_png", caption="../report/sae_density.rst", category="4. Sparse autoencoders",
                 subcategory="feature density", labels={"model": "{model}"}),
    params:
        hook=PLAN.sae.hook,
        eval_tokens=PLAN.sae_eval_tokens,
        block_size=PLAN.context_size,
        model_dir=in_dir("weights"),
        sae_dir=in_dir("sae"),
        device=job("gpu_eval").device,
    log:
        P.log("sae", "sae_eval/{model}"),
    benchmark:
        P.benchmark("sae", "sae_eval/{model}")
    threads: job("gpu_eval").threads
    resources:
        **job("gpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/sae_eval.py"


rule sae_table:
    input:
        lambda w: [P("sae_metrics", model=m) for m in LINEAGE.order],
    output:
        report(P("sae_table"), caption="../report/sae_table.rst", category="4. Sparse autoencoders"),
    params:
        models=LINEAGE.order,
    log:
        P.log("sae", "sae_table"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/sae_table.py"


rule sae_curves:
    input:
        logs=[P("sae_train_log", model=m) for m in PLAN.trained_saes()],
        done=[P("sae_extra", model=m) for m in PLAN.trained_saes()],
    output:
        **figure("sae_curves_html", "sae_curves_png", caption="../report/sae_curves.rst", category="4. Sparse autoencoders"),
    params:
        models=PLAN.trained_saes(),
    log:
        P.log("sae", "sae_curves"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/sae_curves.py"
