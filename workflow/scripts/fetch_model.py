from featureflow.lineage import Pretrained
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    from featureflow.lm import fetch_model

    p = snakemake.params
    fetch_model(name=snakemake.wildcards.model, source=Pretrained(**p.source), out_dir=p.model_dir, cache_dir=p.hub_cache)
