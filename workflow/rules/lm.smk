# Language models: train (from scratch or fine-tune), evaluate on every validation set, gather.


def parent_files(w):
    parent = LINEAGE.models[w.model].parent
    return [f"{R}/models/{parent}/model.safetensors", f"{R}/models/{parent}/config.json"] if parent else []


rule train:
    input:
        mixture=f"{R}/mixtures/{{model}}/train.npy",
        tokenizer=f"{R}/tokenizer/tokenizer_meta.json",
        parent=parent_files,
    output:
        weights=f"{R}/models/{{model}}/model.safetensors",
        config=f"{R}/models/{{model}}/config.json",
        train_log=f"{R}/models/{{model}}/train_log.csv",
        meta=f"{R}/models/{{model}}/train_meta.json",
    wildcard_constraints:
        model="|".join(LINEAGE.trained),
    params:
        arch=CFG["lm"]["architecture"],
        settings=lambda w: PLAN.train_settings(w.model),
        parent=lambda w: LINEAGE.models[w.model].parent,
        seed=CFG["seed"],
        run=PLAN.lm_run_options(),
    log:
        f"{R}/logs/train/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{model}}.tsv"
    threads: CFG["lm"]["threads"]
    resources:
        mem_mb=CFG["lm"]["mem_mb"],
        runtime=CFG["lm"]["runtime"],
        gpu=CFG["lm"]["gpus"],
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        weights=f"{R}/models/{{model}}/model.safetensors",
        validation=lambda w: PLAN.validation_token_files(),
    output:
        f"{R}/models/{{model}}/eval.json",
    params:
        corpora=PLAN.used_corpora(),
        max_tokens=CFG["lm"]["eval_tokens"],
        batch_size=CFG["lm"]["eval_batch_size"],
        device=CFG["lm"]["device"],
    log:
        f"{R}/logs/evaluate/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{model}}.tsv"
    threads: CFG["lm"]["eval_threads"]
    resources:
        mem_mb=CFG["lm"]["mem_mb"],
        runtime=60,
        gpu=CFG["lm"]["gpus"],
    script:
        "../scripts/evaluate.py"


rule eval_table:
    input:
        evals=lambda w: [f"{R}/models/{m}/eval.json" for m in PLAN.evaluated_models()],
        tokens=lambda w: PLAN.validation_token_files() + PLAN.baseline_token_files(),
        tokenizer=f"{R}/tokenizer/tokenizer_meta.json",
    output:
        f"{R}/models/eval.tsv",
    params:
        models=PLAN.evaluated_models(),
        validation=dict(zip(PLAN.used_corpora(), PLAN.validation_token_files())),
        baselines=PLAN.unigram_baselines(),
        block_size=CFG["lm"]["architecture"]["block_size"],
        max_tokens=CFG["lm"]["eval_tokens"],
    log:
        f"{R}/logs/evaluate/eval_table.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/eval_table.py"
