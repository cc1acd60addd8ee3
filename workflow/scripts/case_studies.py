from featureflow.analysis import write_case_studies
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, i, out = snakemake.params, snakemake.input, snakemake.output
    models = [m for m in p.spec["inputs"]]
    write_case_studies(i.edges, i.counts, {m: i[f"table_{m}"] for m in models}, {m: i[f"stats_{m}"] for m in models},
                       {m: i[f"acts_{m}"] for m in models}, i.sample, p.sample_files, p.tokenizer_dir, p.spec,
                       p.studies["persisting"], p.studies["disappearing"], p.studies["contexts"], out.json, out.fig3, out.fig4)
