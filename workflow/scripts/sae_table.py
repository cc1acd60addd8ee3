from featureflow.sae import metrics_table
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    metrics_table(metric_files=dict(zip(snakemake.params.models, snakemake.input, strict=True)), out_tsv=snakemake.output[0])
