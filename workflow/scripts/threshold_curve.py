from featureflow.flow import write_threshold_curve
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    write_threshold_curve(corr_files=p.files, controls=p.controls, out_csv=out.csv, out_html=out.html, out_png=out.get("png"))
