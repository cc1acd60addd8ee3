# Merged models: sweep t (Figure 5), pick t (auto = accuracy equilibrium), write the merged model.


def merge_input_files(w):
    return [f"{R}/models/{m}/model.safetensors" for m in PLAN.merge_participants(w.model)]


rule merge_sweep:
    input:
        weights=merge_input_files,
        validation=lambda w: PLAN.validation_token_files(),
    output:
        sweep=f"{R}/merge/{{model}}/sweep.csv",
        summary=f"{R}/merge/{{model}}/sweep.json",
        html=f"{R}/merge/{{model}}/fig5_merge_sweep.html",
        png=f"{R}/merge/{{model}}/fig5_merge_sweep.png",
    wildcard_constraints:
        model="|".join(LINEAGE.merged) or "^$",
    params:
        spec=lambda w: PLAN.merge_spec(w.model),
        sweep=CFG["merge"],
        run=PLAN.eval_run_options(),
    log:
        f"{R}/logs/merge_sweep/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/merge_sweep/{{model}}.tsv"
    threads: CFG["lm"]["threads"]
    resources:
        mem_mb=CFG["lm"]["mem_mb"],
        runtime=CFG["lm"]["runtime"],
        gpu=CFG["lm"]["gpus"],
    script:
        "../scripts/merge_sweep.py"


rule merge:
    input:
        weights=merge_input_files,
        summary=f"{R}/merge/{{model}}/sweep.json",
    output:
        weights=f"{R}/models/{{model}}/model.safetensors",
        config=f"{R}/models/{{model}}/config.json",
        choice=f"{R}/merge/{{model}}/choice.json",
    wildcard_constraints:
        model="|".join(LINEAGE.merged) or "^$",
    params:
        spec=lambda w: PLAN.merge_spec(w.model),
        eval_tokens=CFG["merge"]["eval_tokens"],
        run=PLAN.eval_run_options(),
    log:
        f"{R}/logs/merge/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/merge/{{model}}.tsv"
    threads: CFG["lm"]["threads"]
    resources:
        mem_mb=CFG["lm"]["mem_mb"],
        runtime=60,
        gpu=CFG["lm"]["gpus"],
    script:
        "../scripts/merge.py"
