# Experiment `experiments.architectures` (off by default; results/flow/architectures/): SAEs of other
# architectures per model at the lineage's width, their metrics, activations and correlations along
# every edge, and the seed ceiling per architecture; the lineage's own architecture is read from sae/
# and flow/. The rules are the lineage's own SAE, activation and correlation rules with their own files.


use rule sae as sae_arch with:
    input:
        unpack(lambda w: PLAN.sae_architecture_inputs(w.model, w.arch)),
    output:
        **sae_files("arch_sae"),
    wildcard_constraints:
        model=only(PLAN.architecture_models()),
        arch=only(PLAN.trained_architectures()),
    params:
        settings=lambda w: as_params(PLAN.sae_with_architecture(w.arch)),
        checkpoints=lambda w: P("arch_sae_checkpoints", model=w.model, arch=w.arch),
    log:
        P.log("flow", "sae_arch/{arch}/{model}"),
    benchmark:
        P.benchmark("flow", "sae_arch/{arch}/{model}")


use rule sae_eval as sae_arch_eval with:
    input:
        sae=P("arch_sae_weights"),
        weights=P("model_weights"),
        tokens=lambda w: PLAN.lineage_token_files(w.model, "validation"),
    output:
        metrics=P("arch_sae_metrics"),
        density=P("arch_sae_density"),
        **figure("arch_sae_density_html", "arch_sae_density_png"),
    wildcard_constraints:
        model=only(PLAN.architecture_models()),
        arch=only(PLAN.trained_architectures()),
    log:
        P.log("flow", "sae_arch_eval/{arch}/{model}"),
    benchmark:
        P.benchmark("flow", "sae_arch_eval/{arch}/{model}")


use rule feature_acts as arch_acts with:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("arch_sae_weights"),
    output:
        P("arch_acts"),
    wildcard_constraints:
        model=only(PLAN.architecture_models()),
        arch=only(PLAN.trained_architectures()),
    log:
        P.log("flow", "arch_acts/{arch}/{model}"),
    benchmark:
        P.benchmark("flow", "arch_acts/{arch}/{model}")


use rule correlate as arch_corr with:
    input:
        unpack(lambda w: PLAN.architecture_edge_acts(w.edge, w.arch)),
    output:
        P("arch_corr"),
    wildcard_constraints:
        edge=only(PLAN.architecture_edges()),
        arch=only(PLAN.trained_architectures()),
    log:
        P.log("flow", "arch_corr/{arch}/{edge}"),
    benchmark:
        P.benchmark("flow", "arch_corr/{arch}/{edge}")


# The seed ceiling per architecture: a second SAE of another seed for the models of controls.sae_seed.
use rule sae_arch as sae_arch_seed with:
    output:
        **sae_files("arch_seed_sae"),
    wildcard_constraints:
        model=only(PLAN.architecture_seed_models()),
        arch=only(PLAN.trained_architectures()),
    params:
        checkpoints=lambda w: P("arch_seed_sae_checkpoints", model=w.model, arch=w.arch),
        seed=lambda w: PLAN.sae_seed_control_seed(w.model),
    log:
        P.log("flow", "sae_arch_seed/{arch}/{model}"),
    benchmark:
        P.benchmark("flow", "sae_arch_seed/{arch}/{model}")


use rule feature_acts as arch_seed_acts with:
    input:
        sample=P("sample"),
        weights=P("model_weights"),
        sae=P("arch_seed_sae_weights"),
    output:
        P("arch_seed_acts"),
    wildcard_constraints:
        model=only(PLAN.architecture_seed_models()),
        arch=only(PLAN.trained_architectures()),
    log:
        P.log("flow", "arch_seed_acts/{arch}/{model}"),
    benchmark:
        P.benchmark("flow", "arch_seed_acts/{arch}/{model}")


use rule correlate as arch_seed_corr with:
    input:
        source=P("arch_acts"),
        target=P("arch_seed_acts"),
    output:
        P("arch_seed_corr"),
    wildcard_constraints:
        model=only(PLAN.architecture_seed_models()),
        arch=only(PLAN.trained_architectures()),
    log:
        P.log("flow", "arch_seed_corr/{arch}/{model}"),
    benchmark:
        P.benchmark("flow", "arch_seed_corr/{arch}/{model}")


rule architectures:
    input:
        metrics=[f for files in PLAN.architectures_inputs()["metrics"].values() for f in files.values()],
        corr=[f for files in PLAN.architectures_inputs()["corr"].values() for f in files.values()],
        ceiling=[f for files in PLAN.architectures_inputs()["ceiling"].values() for f in files.values()],
        extra=[f for files in PLAN.architectures_inputs()["extra"].values() for f in files.values()],
    output:
        csv=P("architectures"),
        saes=P("architectures_saes"),
        **figure("architectures_html", "architectures_png", caption="../report/architectures.rst", category="5. Feature flow"),
    params:
        files=PLAN.architectures_inputs(),
        spec=PLAN.architectures_spec(),
    log:
        P.log("flow", "architectures"),
    threads: job("light").threads
    resources:
        **job("light").resources,
    conda:
        ENV
    script:
        "../scripts/architectures.py"
