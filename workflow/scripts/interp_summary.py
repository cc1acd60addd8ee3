from featureflow.interp import write_summary
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    out = snakemake.output
    write_summary(jsonl=snakemake.params.files, endpoint_model=snakemake.params.endpoint_model, out_json=out.summary,
                  out_html=out.html, out_png=out.get("png"))
