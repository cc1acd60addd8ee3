from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    from featureflow.flow import MergePathFiles, MergePathSpec, write_merge_path

    p, out = snakemake.params, snakemake.output
    write_merge_path(model=snakemake.wildcards.model, spec=MergePathSpec(**p.spec), files=MergePathFiles(**p.files),
                     out={"csv": out.csv, "html": out.html, "png": out.get("png")}, batch_tokens=p.batch_tokens,
                     resources=job_resources(snakemake))
