from featureflow.flow import Shuffle, null_edge
from featureflow.settings import CorrelationSettings, from_block
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    null_edge(acts_a=snakemake.input.source, acts_b=snakemake.input.target, out_npz=snakemake.output[0],
              settings=from_block(CorrelationSettings, p.settings), shuffle=Shuffle(permutations=p.permutations, seed=p.seed),
              resources=job_resources(snakemake))
