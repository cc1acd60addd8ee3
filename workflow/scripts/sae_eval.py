from featureflow.sae import density_histogram, evaluate_sae, held_out_blocks, warn_off_target, write_metrics
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p, out, model = snakemake.params, snakemake.output, snakemake.wildcards.model
    blocks = held_out_blocks(token_files=list(snakemake.input.tokens), block_size=p.block_size, eval_tokens=p.eval_tokens)
    metrics = evaluate_sae(model_dir=p.model_dir, sae_dir=p.sae_dir, blocks=blocks, hook_name=p.hook, resources=job_resources(snakemake))
    write_metrics(metrics=metrics, out_json=out.metrics, out_density=out.density)
    warn_off_target(model=model, metrics=metrics)
    density_histogram(metrics=metrics, title=model, out_html=out.html, out_png=out.get("png"))
