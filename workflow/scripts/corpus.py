from featureflow.hub import hub_access
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]), hub_access(cache_dir=snakemake.params.hub_cache, online=snakemake.rule == "fetch_corpus"):
    from featureflow.data import prepare_corpus
    from featureflow.settings import CorpusSettings, from_block

    p, out = snakemake.params, snakemake.output
    prepare_corpus(name=snakemake.wildcards.corpus, texts={"train": out.train, "validation": out.validation}, summary_json=out.summary,
                   spec=from_block(CorpusSettings, p.spec), seed=p.seed)
