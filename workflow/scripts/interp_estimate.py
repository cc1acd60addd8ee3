from featureflow.interp import write_estimate
from featureflow.settings import InterpCost, from_block
from featureflow.stage import lineage_files, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    write_estimate(files=lineage_files(snakemake), spec=p.spec, cost=from_block(InterpCost, p.settings), seed=p.seed,
                   out_json=snakemake.output[0])
