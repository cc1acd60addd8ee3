from featureflow.analysis import build_browser
from featureflow.settings import BrowserSettings, from_block
from featureflow.stage import lineage_files, stage_main

with stage_main(snakemake.log[0]):
    p = snakemake.params
    result = build_browser(files=lineage_files(snakemake), spec=p.spec, settings=from_block(BrowserSettings, p.settings),
                           out_dir=p.out_dir)
    print(f"browser: {result['bytes'] / 1e6:.1f} MB in {result['seconds']} s")
