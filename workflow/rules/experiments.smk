# Experiments (off by default; `experiments:` in the config, results/flow/): the merge path, the
# compared merge methods, and the width sweep, whose rules are the lineage's own SAE, activation and
# correlation rules with their own files.


# Each parent's SAE on the merged model at every t of the sweep.
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


# The compared merge methods' merged models side by side.
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


# SAEs of other widths per model (the lineage's recipe, another expansion factor), their metrics,
# activations and correlations along every edge; the lineage's own width is read from sae/ and flow/.
use rule sae as sae_width with:
    output:
        **sae_files("width_sae"),
    wildcard_constraints:
        model=only(PLAN.width_models()),
        width=only(map(str, PLAN.trained_widths())),
    params:
        settings=lambda w: as_params(PLAN.sae_at_width(int(w.width))),
        checkpoints=lambda w: P("width_sae_checkpoints", model=w.model, width=w.width),
    log:
        P.log("flow", "sae_width/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "sae_width/x{width}/{model}")


use rule sae_eval as sae_width_eval with:
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
    log:
        P.log("flow", "sae_width_eval/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "sae_width_eval/x{width}/{model}")


use rule feature_acts as width_acts with:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("width_sae_weights"),
    output:
        P("width_acts"),
    wildcard_constraints:
        model=only(PLAN.width_models()),
        width=only(map(str, PLAN.trained_widths())),
    log:
        P.log("flow", "width_acts/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "width_acts/x{width}/{model}")


use rule correlate as width_corr with:
    input:
        unpack(lambda w: PLAN.width_edge_acts(w.edge, int(w.width))),
    output:
        P("width_corr"),
    wildcard_constraints:
        edge=only(PLAN.width_edges()),
        width=only(map(str, PLAN.trained_widths())),
    log:
        P.log("flow", "width_corr/x{width}/{edge}"),
    benchmark:
        P.benchmark("flow", "width_corr/x{width}/{edge}")


# The seed ceiling at each width: a second SAE of another seed for the models of controls.sae_seed,
# its activations and its correlation with the model's SAE of the same width.
use rule sae_width as sae_width_seed with:
    output:
        **sae_files("width_seed_sae"),
    wildcard_constraints:
        model=only(PLAN.width_seed_models()),
        width=only(map(str, PLAN.trained_widths())),
    params:
        checkpoints=lambda w: P("width_seed_sae_checkpoints", model=w.model, width=w.width),
        seed=lambda w: PLAN.sae_seed_control_seed(w.model),
    log:
        P.log("flow", "sae_width_seed/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "sae_width_seed/x{width}/{model}")


use rule feature_acts as width_seed_acts with:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("width_seed_sae_weights"),
    output:
        P("width_seed_acts"),
    wildcard_constraints:
        model=only(PLAN.width_seed_models()),
        width=only(map(str, PLAN.trained_widths())),
    log:
        P.log("flow", "width_seed_acts/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "width_seed_acts/x{width}/{model}")


use rule correlate as width_seed_corr with:
    input:
        source=P("width_acts"),
        target=P("width_seed_acts"),
    output:
        P("width_seed_corr"),
    wildcard_constraints:
        model=only(PLAN.width_seed_models()),
        width=only(map(str, PLAN.trained_widths())),
    log:
        P.log("flow", "width_seed_corr/x{width}/{model}"),
    benchmark:
        P.benchmark("flow", "width_seed_corr/x{width}/{model}")


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
