from featureflow.sae import density_histogram, evaluate_sae, held_out_blocks, warn_off_target, write_metrics
from featureflow.stage import job_resources, stage_main

with stage_main(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    blocks = held_out_blocks(list(snakemake.input.tokens), p.block_size, p.eval_tokens)
    metrics = evaluate_sae(p.model_dir, p.sae_dir, blocks, p.hook, job_resources(snakemake))
    write_metrics(metrics, out.metrics, out.density)
    warn_off_target(snakemake.wildcards.model, metrics)
    density_histogram(metrics, snakemake.wildcards.model, out.html, out.png)
