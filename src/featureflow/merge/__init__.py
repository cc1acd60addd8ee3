"""Merge stage (workflow/rules/merge.smk, results/merge/): merge methods, the t sweep, the merged model."""

from featureflow.exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "METHODS": "methods",
    "merge_weights": "methods",
    "slerp_tensor": "methods",
    "MergeSpec": "sweep",
    "MergedFiles": "sweep",
    "build_merged": "sweep",
    "check_mergeable": "sweep",
    "find_equilibrium": "sweep",
    "load_into": "sweep",
    "load_weights": "sweep",
    "run_sweep": "sweep",
    "write_sweep": "sweep",
    "merge_sweep_figure": "figure",
})
