# Sparse autoencoders: train one per model, evaluate on held-out tokens, gather the metrics.


rule sae:
    input:
        weights=f"{R}/models/{{model}}/model.safetensors",
        tokens=lambda w: PLAN.lineage_token_files(w.model, "train"),
    output:
        weights=f"{R}/saes/{{model}}/sae_weights.safetensors",
        cfg=f"{R}/saes/{{model}}/cfg.json",
        extra=f"{R}/saes/{{model}}/featureflow_sae.json",
        train_log=f"{R}/saes/{{model}}/train_log.csv",
    params:
        settings=PLAN.sae_settings(),
        hook=CFG["sae"]["hook"],
        seed=CFG["seed"],
        run=PLAN.sae_run_options(),
    log:
        f"{R}/logs/sae/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/sae/{{model}}.tsv"
    threads: CFG["lm"]["threads"]
    resources:
        mem_mb=CFG["lm"]["mem_mb"],
        runtime=CFG["lm"]["runtime"],
        gpu=CFG["lm"]["gpus"],
    script:
        "../scripts/sae.py"


rule sae_eval:
    input:
        sae=f"{R}/saes/{{model}}/sae_weights.safetensors",
        weights=f"{R}/models/{{model}}/model.safetensors",
        tokens=lambda w: PLAN.lineage_token_files(w.model, "validation"),
    output:
        metrics=f"{R}/saes/{{model}}/metrics.json",
        density=f"{R}/saes/{{model}}/feature_density.npy",
        html=f"{R}/saes/{{model}}/feature_density.html",
        png=f"{R}/saes/{{model}}/feature_density.png",
    params:
        hook=CFG["sae"]["hook"],
        eval_tokens=CFG["sae"]["eval_tokens"],
        block_size=CFG["lm"]["architecture"]["block_size"],
    log:
        f"{R}/logs/sae_eval/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/sae_eval/{{model}}.tsv"
    threads: CFG["lm"]["eval_threads"]
    resources:
        mem_mb=CFG["lm"]["mem_mb"],
        runtime=60,
    script:
        "../scripts/sae_eval.py"


rule sae_table:
    input:
        lambda w: [f"{R}/saes/{m}/metrics.json" for m in LINEAGE.order],
    output:
        f"{R}/saes/metrics.tsv",
    params:
        models=LINEAGE.order,
    log:
        f"{R}/logs/sae_eval/metrics_table.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/sae_table.py"
