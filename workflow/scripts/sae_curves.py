from featureflow.curves import draw_curves
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    models, inp, out = snakemake.params.models, snakemake.input, snakemake.output
    draw_curves(stage="sae", logs=dict(zip(models, inp.logs, strict=True)), done=dict(zip(models, inp.done, strict=True)),
                out_html=out.html, out_png=out.get("png"))
