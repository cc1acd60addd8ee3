from featureflow.interp import run_interp
from featureflow.settings import InterpSettings
from featureflow.stage import lineage_files, rule_settings, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    run_interp(files=lineage_files(snakemake), spec=p.spec,
               settings=rule_settings(snakemake, InterpSettings, "interp", run_only=InterpSettings.RUN_ONLY),
               seed=p.seed, cache_dir=p.cache_dir, out_jsonl=snakemake.output[0])
