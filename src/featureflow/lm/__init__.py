"""Language-model stage (workflow/rules/lm.smk, results/lm/): the model, training, evaluation."""

from featureflow.exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "build_model": "model",
    "FAMILIES": "families",
    "Family": "families",
    "LMShape": "families",
    "config_name": "families",
    "family_of": "families",
    "lm_shape": "families",
    "check_parent": "folder",
    "load_model": "model",
    "save_model": "folder",
    "shape_of": "folder",
    "tokenizer_digest": "folder",
    "load_for_inference": "native",
    "load_for_training": "native",
    "fetch_model": "pretrained",
    "ParentModel": "train",
    "TrainFiles": "train",
    "train_model": "train",
    "EvalShape": "tables",
    "eval_table": "tables",
    "evaluate_model": "evaluate",
    "ValidationSet": "evaluate",
    "next_token_metrics": "evaluate",
    "logits_batch": "evaluate",
})
