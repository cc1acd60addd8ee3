"""SAE stage (workflow/rules/sae.smk, results/sae/): the sparse autoencoder, its data, training and evaluation."""

from featureflow.exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "SparseAutoencoder": "model",
    "decode_raw": "model",
    "encode_raw": "model",
    "load_sae_weights": "model",
    "BlockSource": "activations",
    "hook_layer": "activations",
    "mlp_hook_post": "activations",
    "SAEFiles": "train",
    "train_sae": "train",
    "density_histogram": "evaluate",
    "evaluate_sae": "evaluate",
    "held_out_blocks": "evaluate",
    "metrics_table": "evaluate",
    "write_metrics": "evaluate",
    "LMShape": "memory",
    "sae_eval_memory": "memory",
    "sae_train_memory": "memory",
    "OFF_TARGET_RULE": "targets",
    "off_target": "targets",
    "off_target_saes": "targets",
    "warn_off_target": "targets",
})
