from featureflow.merge import MergeSpec, merge_sweep_figure, run_sweep, write_sweep
from featureflow.settings import MergeSettings, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    rows, summary = run_sweep(spec=MergeSpec(**p.spec), settings=from_block(MergeSettings, p.settings), batch_size=p.batch_size,
                              resources=job_resources(snakemake))
    write_sweep(rows=rows, summary=summary, out_csv=out.sweep, out_json=out.summary)
    merge_sweep_figure(sweep_csv=out.sweep, sweep_json=out.summary, out_html=out.html, out_png=out.get("png"))
