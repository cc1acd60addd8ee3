from featureflow.merge import MergeSpec, merge_sweep_figure, run_sweep, write_sweep
from featureflow.settings import MergeSettings, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    rows, summary = run_sweep(MergeSpec(**p.spec), from_block(MergeSettings, p.settings), p.batch_size, job_resources(snakemake))
    write_sweep(rows, summary, out.sweep, out.summary)
    merge_sweep_figure(out.sweep, out.summary, out.html, out.png)
