# Text -> split corpora -> tokenizer -> token arrays -> per-model training mixtures.


rule corpus:
    input:
        lambda w: PLAN.local_files(w.corpus),
    output:
        train=f"{R}/corpora/{{corpus}}/train.txt",
        validation=f"{R}/corpora/{{corpus}}/validation.txt",
        summary=f"{R}/corpora/{{corpus}}/split.json",
    params:
        spec=lambda w: CFG["corpora"][w.corpus],
        seed=CFG["seed"],
    log:
        f"{R}/logs/corpus/{{corpus}}.log",
    benchmark:
        f"{R}/benchmarks/corpus/{{corpus}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/corpus.py"


rule tokenizer:
    input:
        lambda w: [f"{R}/corpora/{c}/train.txt" for c in PLAN.tokenizer_corpora()],
    output:
        tokenizer=f"{R}/tokenizer/tokenizer.json",
        meta=f"{R}/tokenizer/tokenizer_meta.json",
    params:
        cfg=CFG["tokenizer"],
    log:
        f"{R}/logs/tokenizer/tokenizer.log",
    benchmark:
        f"{R}/benchmarks/tokenizer/tokenizer.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    script:
        "../scripts/tokenizer.py"


rule tokens:
    input:
        text=f"{R}/corpora/{{corpus}}/{{split}}.txt",
        meta=f"{R}/tokenizer/tokenizer_meta.json",
    output:
        ids=f"{R}/tokens/{{corpus}}/{{split}}.npy",
        counts=f"{R}/tokens/{{corpus}}/{{split}}.json",
    log:
        f"{R}/logs/tokens/{{corpus}}_{{split}}.log",
    benchmark:
        f"{R}/benchmarks/tokens/{{corpus}}_{{split}}.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    script:
        "../scripts/tokens.py"


rule mixture:
    input:
        unpack(lambda w: {c: f"{R}/tokens/{c}/{w.split}.npy" for c in LINEAGE.models[w.model].train_on}),
    output:
        ids=f"{R}/mixtures/{{model}}/{{split}}.npy",
        summary=f"{R}/mixtures/{{model}}/{{split}}.json",
    params:
        mode=lambda w: LINEAGE.models[w.model].mix,
    log:
        f"{R}/logs/mixture/{{model}}_{{split}}.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        "../scripts/mixture.py"


rule token_summary:
    input:
        lambda w: PLAN.token_count_files(),
    output:
        f"{R}/tokens/summary.tsv",
    log:
        f"{R}/logs/tokens/summary.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/token_summary.py"
