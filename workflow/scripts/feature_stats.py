from featureflow.analysis import write_feature_stats
from featureflow.settings import FeatureStatsSettings, from_block
from featureflow.stage import lineage_files, stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    write_feature_stats(files=lineage_files(snakemake), settings=from_block(FeatureStatsSettings, p.settings), hook_name=p.hook,
                        out_npz=out.stats, out_csv=out.table)
