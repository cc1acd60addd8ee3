# Data stage (featureflow.data, results/data/): text -> split corpora -> tokenizer -> token arrays
# -> per-model training mixtures.


localrules:
    fetch_corpus,


rule corpus:
    input:
        lambda w: PLAN.local_files(w.corpus),
    output:
        train=P("corpus_text", split="train"),
        validation=P("corpus_text", split="validation"),
        summary=P("corpus_summary"),
    params:
        spec=lambda w: as_params(PLAN.corpus(w.corpus)),
        seed=PLAN.seed,
        hub_cache=None,
    wildcard_constraints:
        corpus=only(PLAN.file_corpora()),
    log:
        P.log("data", "corpus/{corpus}"),
    benchmark:
        P.benchmark("data", "corpus/{corpus}")
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/corpus.py"


# Hub corpora: the same job, run where snakemake runs (a login node has the network; compute nodes
# often do not). It streams the dataset and keeps only what the selection takes; every job after it
# reads the files it wrote, with the hub offline.
use rule corpus as fetch_corpus with:
    input:
        [],
    params:
        hub_cache=PLAN.data_cache,
    wildcard_constraints:
        corpus=only(PLAN.hub_corpora()),
    log:
        P.log("data", "fetch/{corpus}"),
    benchmark:
        P.benchmark("data", "fetch/{corpus}")


# With pretrained models in the lineage the tokenizer is theirs (featureflow.data.tokenizer_from_models).
rule tokenizer:
    input:
        texts=lambda w: [P("corpus_text", corpus=c, split="train") for c in PLAN.tokenizer_corpora()],
        pretrained=[P("pretrained_meta", model=m) for m in LINEAGE.pretrained],
    output:
        tokenizer=P("tokenizer_json"),
        meta=P("tokenizer_meta"),
    params:
        **PLAN.tokenizer_params(),
        out_dir=out_dir("meta"),
    log:
        P.log("data", "tokenizer"),
    benchmark:
        P.benchmark("data", "tokenizer")
    threads: job("tokenize").threads
    resources:
        **job("tokenize").resources,
    conda:
        ENV
    script:
        "../scripts/tokenizer.py"


rule tokens:
    input:
        text=P("corpus_text"),
        meta=P("tokenizer_meta"),
    output:
        ids=P("tokens"),
        counts=P("token_counts"),
    params:
        tokenizer_dir=in_dir("meta"),
    log:
        P.log("data", "tokens/{corpus}_{split}"),
    benchmark:
        P.benchmark("data", "tokens/{corpus}_{split}")
    threads: job("tokenize").threads
    resources:
        **job("tokenize").resources,
    conda:
        ENV
    script:
        "../scripts/tokens.py"


rule mixture:
    input:
        unpack(lambda w: {c: P("tokens", corpus=c, split=w.split) for c in LINEAGE.models[w.model].train_on}),
    output:
        ids=P("mixture"),
        summary=P("mixture_summary"),
    params:
        mode=lambda w: LINEAGE.models[w.model].mix,
    log:
        P.log("data", "mixture/{model}_{split}"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/mixture.py"


rule token_summary:
    input:
        lambda w: [path for _, _, path in PLAN.token_counts()],
    output:
        report(P("token_summary"), caption="../report/token_summary.rst", category="1. Data"),
    params:
        counts=PLAN.token_counts(),
    log:
        P.log("data", "token_summary"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/token_summary.py"
