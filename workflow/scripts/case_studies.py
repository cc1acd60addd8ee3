from featureflow.analysis import write_case_studies
from featureflow.settings import CaseStudySettings, from_block
from featureflow.stage import lineage_files, stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    write_case_studies(files=lineage_files(snakemake), spec=p.spec, settings=from_block(CaseStudySettings, p.settings),
                       sample_files=p.sample_files, out_json=out.json, out_figs=(out.fig3, out.fig4))
