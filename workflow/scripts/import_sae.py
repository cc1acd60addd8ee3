from pathlib import Path

from featureflow.lineage import Pretrained
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    from transformers import AutoConfig

    from featureflow.sae import hook_width, import_sae

    p, model = snakemake.params, snakemake.wildcards.model
    d_in = hook_width(config=AutoConfig.from_pretrained(str(Path(snakemake.input.config).parent)), hook_name=p.hook, model_name=model)
    import_sae(model=model, source=Pretrained(**p.source), out_dir=p.sae_dir, hook_name=p.hook, d_in=d_in, cache_dir=p.hub_cache)
