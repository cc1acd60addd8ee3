# Flow stage (featureflow.flow, results/flow/): activations on a common sample, exact correlation
# per lineage edge, classes at the threshold, and the Sankey diagram. `threshold` is read by
# classify only (the Sankey takes it from counts.csv), so a new threshold reruns classify and
# sankey and nothing above them.


rule common_sample:
    input:
        lambda w: list(PLAN.common_sample_files().values()),
    output:
        P("sample"),
    params:
        files=PLAN.common_sample_files(),
        tokens=PLAN.acts.tokens,
        context_size=PLAN.acts.context_size,
        seed=PLAN.seed,
    log:
        P.log("flow", "common_sample"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/common_sample.py"


rule feature_acts:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("sae_weights"),
    output:
        P("acts"),
    params:
        hook=PLAN.sae.hook,
        batch_tokens=PLAN.acts.batch_tokens,
        model_dir=in_dir("weights"),
        sae_dir=in_dir("sae"),
        device=job("gpu_eval").device,
    log:
        P.log("flow", "feature_acts/{model}"),
    benchmark:
        P.benchmark("flow", "feature_acts/{model}")
    threads: job("gpu_eval").threads
    resources:
        **job("gpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/feature_acts.py"


rule correlate:
    input:
        unpack(lambda w: PLAN.edge_acts(w.edge)),
    output:
        P("corr"),
    params:
        settings=as_params(PLAN.correlation),
        device=job("cpu_eval").device,
    log:
        P.log("flow", "correlate/{edge}"),
    benchmark:
        P.benchmark("flow", "correlate/{edge}")
    threads: job("cpu_eval").threads
    resources:
        **job("cpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/correlate.py"


rule classify:
    input:
        matches=list(PLAN.classify_files().values()),
        controls=PLAN.control_inputs(),
    output:
        edges=P("edges"),
        counts=report(P("counts"), caption="../report/counts.rst", category="5. Feature flow"),
    params:
        threshold=PLAN.threshold,
        files=PLAN.classify_files(),
        controls=PLAN.control_files(),
        spec=PLAN.flow_spec(),
    log:
        P.log("flow", "classify"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/classify.py"


rule sankey:
    input:
        edges=P("edges"),
        counts=P("counts"),
    output:
        **figure("sankey_html", "sankey_png", caption="../report/fig2.rst", category="5. Feature flow"),
    params:
        spec=PLAN.flow_spec(),
    log:
        P.log("flow", "sankey"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/sankey.py"


# Controls (featureflow.flow.controls): yardsticks for "persisting". Each reuses a stage's script
# with its own files: a second SAE of another seed (the sae script), its activations (feature_acts)
# and its correlation with the model's own SAE (correlate); the shuffle null per lineage edge.
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


rule sae_seed_control:
    input:
        weights=P("model_weights"),
        tokens=lambda w: PLAN.lineage_token_files(w.model, "train"),
    output:
        weights=P("control_sae_weights"),
        cfg=P("control_sae_cfg"),
        extra=P("control_sae_extra"),
        train_log=P("control_sae_train_log"),
    params:
        settings=as_params(PLAN.sae),
        model_dir=in_dir("weights"),
        sae_dir=out_dir("weights"),
        checkpoints=lambda w: P("control_sae_checkpoints", model=w.model),
        seed=lambda w: PLAN.sae_seed_control_seed,
        device=job("sae").device,
        compile=job("sae").compile,
    log:
        P.log("flow", "sae_seed/{model}"),
    benchmark:
        P.benchmark("flow", "sae_seed/{model}")
    threads: job("sae").threads
    resources:
        **job("sae").resources,
    conda:
        ENV
    script:
        "../scripts/sae.py"


rule control_acts:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("control_sae_weights"),
    output:
        P("control_acts"),
    params:
        hook=PLAN.sae.hook,
        batch_tokens=PLAN.acts.batch_tokens,
        model_dir=in_dir("weights"),
        sae_dir=in_dir("sae"),
        device=job("gpu_eval").device,
    log:
        P.log("flow", "control_acts/{model}"),
    benchmark:
        P.benchmark("flow", "control_acts/{model}")
    threads: job("gpu_eval").threads
    resources:
        **job("gpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/feature_acts.py"


rule sae_seed_corr:
    input:
        source=P("acts"),
        target=P("control_acts"),
    output:
        P("control_corr"),
    params:
        settings=as_params(PLAN.correlation),
        device=job("cpu_eval").device,
    log:
        P.log("flow", "sae_seed_corr/{model}"),
    benchmark:
        P.benchmark("flow", "sae_seed_corr/{model}")
    threads: job("cpu_eval").threads
    resources:
        **job("cpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/correlate.py"


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


# Other matching criteria (featureflow.flow.matching): `criterion` picks the one classify uses,
# `controls.compare_criteria` computes all of them and compares their pair sets.
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


# Experiment (off by default): each parent's SAE on the merged model at every t of the sweep.
rule merge_path:
    input:
        lambda w: PLAN.merge_path_files(w.model),
    output:
        csv=P("merge_path"),
        **figure("merge_path_html", "merge_path_png", caption="../report/merge_path.rst", category="5. Feature flow", subcategory="{model}"),
    wildcard_constraints:
        model=only(PLAN.merge_path_models()),
    params:
        files=lambda w: PLAN.merge_path_inputs(w.model),
        spec=lambda w: PLAN.merge_path_spec(w.model),
        batch_tokens=PLAN.acts.batch_tokens,
        device=job("gpu_eval").device,
    log:
        P.log("flow", "merge_path/{model}"),
    benchmark:
        P.benchmark("flow", "merge_path/{model}")
    threads: job("gpu_eval").threads
    resources:
        **job("gpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/merge_path.py"


# Experiment (off by default): the compared merge methods' merged models side by side.
rule merge_methods:
    input:
        choices=lambda w: [P("merge_choice", model=m) for ms in PLAN.merge_method_groups().values() for m in ms],
        edges=P("edges"),
        counts=P("counts"),
    output:
        csv=P("merge_methods"),
        **figure("merge_methods_html", "merge_methods_png", caption="../report/merge_methods.rst", category="5. Feature flow"),
    params:
        groups=PLAN.merge_method_groups(),
        choices={m: P("merge_choice", model=m) for ms in PLAN.merge_method_groups().values() for m in ms},
    log:
        P.log("flow", "merge_methods"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/merge_methods.py"


# Experiment (off by default): SAEs of other widths per model (the lineage's recipe, another
# expansion factor), their metrics, activations and correlations along every edge; the lineage's
# own width is read from sae/ and flow/. Each reuses a stage's script with its own files.
rule sae_width:
    input:
        weights=P("model_weights"),
        tokens=lambda w: PLAN.lineage_token_files(w.model, "train"),
    output:
        weights=P("width_sae_weights"),
        cfg=P("width_sae_cfg"),
        extra=P("width_sae_extra"),
        train_log=P("width_sae_train_log"),
    wildcard_constraints:
        model=only(PLAN.width_models()),
        width=only(map(str, PLAN.trained_widths())),
    params:
        settings=lambda w: as_params(PLAN.sae_at_width(int(w.width))),
        model_dir=in_dir("weights"),
        sae_dir=out_dir("weights"),
        checkpoints=lambda w: P("width_sae_checkpoints", model=w.model, width=w.width),
        seed=PLAN.seed,
        device=job("sae").device,
        compile=job("sae").compile,
    log:
        P.log("flow", "sae_width/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "sae_width/x{width}/{model}")
    threads: job("sae").threads
    resources:
        **job("sae").resources,
    conda:
        ENV
    script:
        "../scripts/sae.py"


rule sae_width_eval:
    input:
        sae=P("width_sae_weights"),
        weights=P("model_weights"),
        tokens=lambda w: PLAN.lineage_token_files(w.model, "validation"),
    output:
        metrics=P("width_sae_metrics"),
        density=P("width_sae_density"),
        **figure("width_sae_density_html", "width_sae_density_png"),
    wildcard_constraints:
        model=only(PLAN.width_models()),
        width=only(map(str, PLAN.trained_widths())),
    params:
        hook=PLAN.sae.hook,
        eval_tokens=PLAN.sae_eval_tokens,
        block_size=PLAN.context_size,
        model_dir=in_dir("weights"),
        sae_dir=in_dir("sae"),
        device=job("gpu_eval").device,
    log:
        P.log("flow", "sae_width_eval/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "sae_width_eval/x{width}/{model}")
    threads: job("gpu_eval").threads
    resources:
        **job("gpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/sae_eval.py"


rule width_acts:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("width_sae_weights"),
    output:
        P("width_acts"),
    wildcard_constraints:
        model=only(PLAN.width_models()),
        width=only(map(str, PLAN.trained_widths())),
    params:
        hook=PLAN.sae.hook,
        batch_tokens=PLAN.acts.batch_tokens,
        model_dir=in_dir("weights"),
        sae_dir=in_dir("sae"),
        device=job("gpu_eval").device,
    log:
        P.log("flow", "width_acts/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "width_acts/x{width}/{model}")
    threads: job("gpu_eval").threads
    resources:
        **job("gpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/feature_acts.py"


rule width_corr:
    input:
        unpack(lambda w: PLAN.width_edge_acts(w.edge, int(w.width))),
    output:
        P("width_corr"),
    wildcard_constraints:
        edge=only(PLAN.width_edges()),
        width=only(map(str, PLAN.trained_widths())),
    params:
        settings=as_params(PLAN.correlation),
        device=job("cpu_eval").device,
    log:
        P.log("flow", "width_corr/x{width}/{edge}"),
    benchmark:
        P.benchmark("flow", "width_corr/x{width}/{edge}")
    threads: job("cpu_eval").threads
    resources:
        **job("cpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/correlate.py"


# The seed ceiling at each width: a second SAE of another seed for the models of controls.sae_seed,
# its activations and its correlation with the model's SAE of the same width.
rule sae_width_seed:
    input:
        weights=P("model_weights"),
        tokens=lambda w: PLAN.lineage_token_files(w.model, "train"),
    output:
        weights=P("width_seed_sae_weights"),
        cfg=P("width_seed_sae_cfg"),
        extra=P("width_seed_sae_extra"),
        train_log=P("width_seed_sae_train_log"),
    wildcard_constraints:
        model=only(PLAN.width_seed_models()),
        width=only(map(str, PLAN.trained_widths())),
    params:
        settings=lambda w: as_params(PLAN.sae_at_width(int(w.width))),
        model_dir=in_dir("weights"),
        sae_dir=out_dir("weights"),
        checkpoints=lambda w: P("width_seed_sae_checkpoints", model=w.model, width=w.width),
        seed=lambda w: PLAN.sae_seed_control_seed,
        device=job("sae").device,
        compile=job("sae").compile,
    log:
        P.log("flow", "sae_width_seed/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "sae_width_seed/x{width}/{model}")
    threads: job("sae").threads
    resources:
        **job("sae").resources,
    conda:
        ENV
    script:
        "../scripts/sae.py"


rule width_seed_acts:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("width_seed_sae_weights"),
    output:
        P("width_seed_acts"),
    wildcard_constraints:
        model=only(PLAN.width_seed_models()),
        width=only(map(str, PLAN.trained_widths())),
    params:
        hook=PLAN.sae.hook,
        batch_tokens=PLAN.acts.batch_tokens,
        model_dir=in_dir("weights"),
        sae_dir=in_dir("sae"),
        device=job("gpu_eval").device,
    log:
        P.log("flow", "width_seed_acts/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "width_seed_acts/x{width}/{model}")
    threads: job("gpu_eval").threads
    resources:
        **job("gpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/feature_acts.py"


rule width_seed_corr:
    input:
        source=P("width_acts"),
        target=P("width_seed_acts"),
    output:
        P("width_seed_corr"),
    wildcard_constraints:
        model=only(PLAN.width_seed_models()),
        width=only(map(str, PLAN.trained_widths())),
    params:
        settings=as_params(PLAN.correlation),
        device=job("cpu_eval").device,
    log:
        P.log("flow", "width_seed_corr/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "width_seed_corr/x{width}/{model}")
    threads: job("cpu_eval").threads
    resources:
        **job("cpu_eval").resources,
    conda:
        ENV
    script:
        "../scripts/correlate.py"


rule widths:
    input:
        metrics=[f for files in PLAN.widths_inputs()["metrics"].values() for f in files.values()],
        corr=[f for files in PLAN.widths_inputs()["corr"].values() for f in files.values()],
        ceiling=[f for files in PLAN.widths_inputs()["ceiling"].values() for f in files.values()],
    output:
        csv=P("widths"),
        saes=P("widths_saes"),
        **figure("widths_html", "widths_png", caption="../report/widths.rst", category="5. Feature flow"),
    params:
        files=PLAN.widths_inputs(),
        spec=PLAN.widths_spec(),
    log:
        P.log("flow", "widths"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/widths.py"
