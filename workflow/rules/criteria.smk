# Other matching criteria (featureflow.flow.matching, results/flow/): `criterion` picks the one
# classify uses, `controls.compare_criteria` computes all of them and compares their pair sets.


rule decoder_cosine:
    input:
        unpack(lambda w: PLAN.edge_saes(w.edge)),
    output:
        P("decoder_cosine"),
    params:
        source_dir=in_dir("source"),
        target_dir=in_dir("target"),
        top_k=PLAN.correlation.top_k,
    log:
        P.log("flow", "decoder_cosine/{edge}"),
    benchmark:
        P.benchmark("flow", "decoder_cosine/{edge}")
    threads: job("cpu_eval").threads
    resources:
        **job("cpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/decoder_cosine.py"


rule one_to_one:
    input:
        P("corr"),
    output:
        P("one_to_one"),
    log:
        P.log("flow", "one_to_one/{edge}"),
    benchmark:
        P.benchmark("flow", "one_to_one/{edge}")
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/one_to_one.py"


rule criteria:
    input:
        matches=[f for files in PLAN.criteria_files().values() for f in files.values()],
        counts=P("counts"),
    output:
        report(P("criteria"), caption="../report/criteria.rst", category="5. Feature flow"),
    params:
        files=PLAN.criteria_files(),
    log:
        P.log("flow", "criteria"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/criteria.py"
