from featureflow.analysis import build_browser
from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    p, i = snakemake.params, snakemake.input
    models = list(p.spec["inputs"])
    edges = [k.removeprefix("corr_") for k in i.keys() if k.startswith("corr_")]
    result = build_browser(models, p.spec, {m: i[f"table_{m}"] for m in models}, {m: i[f"stats_{m}"] for m in models},
                           {m: i[f"acts_{m}"] for m in models}, {e: i[f"corr_{e}"] for e in edges}, i.sample, p.tokenizer_dir,
                           p.hypotheses, p.contexts, p.window, p.out_dir,
                           {m: i[f"interp_{m}"] for m in models if f"interp_{m}" in i.keys()})
    print(f"browser: {result['bytes'] / 1e6:.1f} MB in {result['seconds']} s")
