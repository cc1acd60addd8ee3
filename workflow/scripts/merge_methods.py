from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    from featureflow.flow import write_merge_methods

    p, out = snakemake.params, snakemake.output
    write_merge_methods(groups=p.groups, choices=p.choices, edges_csv=snakemake.input.edges, counts_csv=snakemake.input.counts,
                        out={"csv": out.csv, "html": out.html, "png": out.get("png")})
