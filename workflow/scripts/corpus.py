from featureflow.data import prepare_corpus
from featureflow.settings import CorpusSettings, from_block
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    prepare_corpus(snakemake.wildcards.corpus, {"train": out.train, "validation": out.validation}, out.summary,
                   from_block(CorpusSettings, p.spec), p.seed)
