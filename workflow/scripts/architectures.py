from featureflow.stage import stage_main

with stage_main(snakemake.log[0]):
    from featureflow.flow import write_architectures

    p, out = snakemake.params, snakemake.output
    write_architectures(spec=p.spec, files=p.files, out={"csv": out.csv, "saes": out.saes, "html": out.html, "png": out.get("png")})
