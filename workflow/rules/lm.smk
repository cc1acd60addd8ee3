# Language-model stage (featureflow.lm, results/lm/): train (from scratch or fine-tune), evaluate
# every model (merged ones included) on every validation set, gather the table; draw the training
# curves (featureflow.curves, which also follows running jobs: python -m featureflow.curves results).


localrules:
    lm_curves,
    fetch_model,


# Pretrained models: copied into results/lm/{model}/ where snakemake runs (a login node has the
# network; compute nodes often do not), from a local folder or the hub through `data_cache`.
rule fetch_model:
    input:
        lambda w: PLAN.pretrained_files(w.model),
    output:
        weights=P("model_weights"),
        config=P("model_config"),
        meta=P("pretrained_meta"),
    wildcard_constraints:
        model=only(LINEAGE.pretrained),
    params:
        source=lambda w: PLAN.pretrained_source(w.model),
        hub_cache=PLAN.data_cache,
        model_dir=out_dir("weights"),
    log:
        P.log("lm", "fetch_model/{model}"),
    benchmark:
        P.benchmark("lm", "fetch_model/{model}")
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/fetch_model.py"


rule train:
    input:
        mixture=P("mixture", split="train"),
        tokenizer=P("tokenizer_meta"),
        parent=parent_files,
    output:
        weights=P("model_weights"),
        config=P("model_config"),
        train_log=P("train_log"),
        meta=P("train_meta"),
    wildcard_constraints:
        model=only(LINEAGE.trained),
    params:
        settings=lambda w: as_params(PLAN.train_job(w.model)),
        parent=lambda w: LINEAGE.models[w.model].parent,
        parent_dir=parent_dir,
        tokenizer_dir=in_dir("tokenizer"),
        model_dir=out_dir("weights"),
        checkpoints=lambda w: P("lm_checkpoints", model=w.model),
        seed=lambda w: PLAN.model_seed(w.model),
        device=job("train").device,
        compile=job("train").compile,
    log:
        P.log("lm", "train/{model}"),
    benchmark:
        P.benchmark("lm", "train/{model}")
    threads: job("train").threads
    resources:
        **job("train").resources,
    conda:
        ENV
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        weights=P("model_weights"),
        validation=lambda w: list(PLAN.validation_token_files().values()),
    output:
        P("model_eval"),
    params:
        model_dir=in_dir("weights"),
        validation=PLAN.validation_token_files(),
        block_size=PLAN.context_size,
        max_tokens=PLAN.lm.eval_tokens,
        batch_size=PLAN.lm.eval_batch_size,
        device=job("gpu_eval").device,
    log:
        P.log("lm", "evaluate/{model}"),
    benchmark:
        P.benchmark("lm", "evaluate/{model}")
    threads: job("gpu_eval").threads
    resources:
        **job("gpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule eval_table:
    input:
        evals=lambda w: [P("model_eval", model=m) for m in PLAN.evaluated_models()],
        tokens=lambda w: list(PLAN.validation_token_files().values()) + PLAN.baseline_token_files(),
        tokenizer=P("tokenizer_meta"),
    output:
        report(P("eval_table"), caption="../report/eval_table.rst", category="2. Language models"),
    params:
        models=PLAN.evaluated_models(),
        validation=PLAN.validation_token_files(),
        baselines=PLAN.unigram_baselines(),
        block_size=PLAN.context_size,
        max_tokens=PLAN.lm.eval_tokens,
    log:
        P.log("lm", "eval_table"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/eval_table.py"


rule lm_curves:
    input:
        logs=[P("train_log", model=m) for m in LINEAGE.trained],  # no trained model: not a target
        done=[P("train_meta", model=m) for m in LINEAGE.trained],
    output:
        **figure("lm_curves_html", "lm_curves_png", caption="../report/lm_curves.rst", category="2. Language models"),
    params:
        models=LINEAGE.trained,
    log:
        P.log("lm", "lm_curves"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/lm_curves.py"
