# Merge stage (featureflow.merge, results/merge/): sweep t (Figure 5), pick t (auto = accuracy
# equilibrium), and write the merged model into results/lm/ beside the trained ones.


rule merge_sweep:
    input:
        weights=merge_input_files,
        validation=lambda w: list(PLAN.validation_token_files().values()),
    output:
        sweep=P("merge_sweep"),
        summary=P("merge_sweep_summary"),
        **figure("merge_figure_html", "merge_figure_png", caption="../report/fig5.rst", category="3. Merging", subcategory="{model}"),
    wildcard_constraints:
        model=only(LINEAGE.merged),
    params:
        **merge_params(),
        device=job("merge").device,
    log:
        P.log("merge", "merge_sweep/{model}"),
    benchmark:
        P.benchmark("merge", "merge_sweep/{model}")
    threads: job("merge").threads
    resources:
        **job("merge").resources,
    conda:
        ENV
    script:
        "../scripts/merge_sweep.py"


rule merge:
    input:
        weights=merge_input_files,
        summary=P("merge_sweep_summary"),
    output:
        weights=P("model_weights"),
        config=P("model_config"),
        choice=report(P("merge_choice"), caption="../report/merge_choice.rst", category="3. Merging", subcategory="{model}"),
    wildcard_constraints:
        model=only(LINEAGE.merged),
    params:
        **merge_params(),
        model_dir=out_dir("weights"),
        device=job("merge").device,
    log:
        P.log("merge", "merge/{model}"),
    benchmark:
        P.benchmark("merge", "merge/{model}")
    threads: job("merge").threads
    resources:
        **job("merge").resources,
    conda:
        ENV
    script:
        "../scripts/merge.py"
