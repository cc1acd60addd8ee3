from featureflow.curves import draw_curves
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    models, inp, out = snakemake.params.models, snakemake.input, snakemake.output
    draw_curves("sae", dict(zip(models, inp.logs, strict=True)), dict(zip(models, inp.done, strict=True)), out.html, out.png)
