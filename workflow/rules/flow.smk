# Feature flow: activations on a common sample, exact correlation per lineage edge, classes at
# the threshold, and the Sankey diagram. `threshold` is read by classify only (the Sankey takes it
# from counts.csv), so a new threshold reruns classify and sankey and nothing above them.


rule common_sample:
    input:
        lambda w: list(PLAN.common_sample_files().values()),
    output:
        f"{R}/acts/sample.npz",
    params:
        files=PLAN.common_sample_files(),
        tokens=CFG["acts"]["tokens"],
        context_size=CFG["acts"]["context_size"],
        seed=CFG["seed"],
    log:
        f"{R}/logs/acts/sample.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/common_sample.py"


rule feature_acts:
    input:
        sample=f"{R}/acts/sample.npz",
        weights=f"{R}/models/{{model}}/model.safetensors",
        sae=f"{R}/saes/{{model}}/sae_weights.safetensors",
    output:
        f"{R}/acts/{{model}}.npz",
    params:
        hook=CFG["sae"]["hook"],
        batch_tokens=CFG["acts"]["batch_tokens"],
        device=CFG["lm"]["device"],
    log:
        f"{R}/logs/acts/{{model}}.log",
    benchmark:
        f"{R}/benchmarks/acts/{{model}}.tsv"
    threads: CFG["lm"]["eval_threads"]
    resources:
        mem_mb=CFG["lm"]["mem_mb"],
        runtime=120,
        gpu=CFG["lm"]["gpus"],
    script:
        "../scripts/feature_acts.py"


rule correlate:
    input:
        source=lambda w: f"{R}/acts/{w.edge.split('__')[0]}.npz",
        target=lambda w: f"{R}/acts/{w.edge.split('__')[1]}.npz",
    output:
        f"{R}/corr/{{edge}}.npz",
    params:
        method=CFG["correlation"]["method"],
        top_k=CFG["correlation"]["top_k"],
    log:
        f"{R}/logs/corr/{{edge}}.log",
    benchmark:
        f"{R}/benchmarks/corr/{{edge}}.tsv"
    threads: CFG["lm"]["eval_threads"]
    resources:
        mem_mb=CFG["lm"]["mem_mb"],
        runtime=60,
    script:
        "../scripts/correlate.py"


rule classify:
    input:
        lambda w: list(PLAN.correlation_files().values()),
    output:
        edges=f"{R}/flow/edges.csv",
        counts=f"{R}/flow/counts.csv",
    params:
        threshold=CFG["threshold"],
        files=PLAN.correlation_files(),
        spec=PLAN.flow_spec(),
    log:
        f"{R}/logs/flow/classify.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/classify.py"


rule sankey:
    input:
        edges=f"{R}/flow/edges.csv",
        counts=f"{R}/flow/counts.csv",
    output:
        html=f"{R}/flow/fig2_sankey.html",
        png=f"{R}/flow/fig2_sankey.png",
    params:
        spec=PLAN.flow_spec(),
    log:
        f"{R}/logs/flow/sankey.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/sankey.py"
