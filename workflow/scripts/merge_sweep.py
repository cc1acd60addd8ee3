from featureflow.figures import merge_sweep_figure
from featureflow.merge import run_sweep, write_sweep
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    spec, sweep, out = snakemake.params.spec, snakemake.params.sweep, snakemake.output
    rows, summary = run_sweep(spec["first"], spec["second"], spec["dirs"], spec["own_validation"], spec["method"], spec["base"],
                              sweep["grid_step"], sweep["refine_step"], sweep["eval_tokens"], threads=snakemake.threads, **snakemake.params.run)
    write_sweep(rows, summary, out.sweep, out.summary)
    merge_sweep_figure(out.sweep, out.summary, out.html, out.png)
