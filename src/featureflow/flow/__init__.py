"""Feature-flow stage (workflow/rules/flow.smk, results/flow/): activations, correlation, classes, Sankey."""

from featureflow.exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "FeatureSource": "feature_acts",
    "compute_feature_acts": "feature_acts",
    "draw_common_sample": "feature_acts",
    "load_acts": "arrays",
    "load_sample": "arrays",
    "save_acts": "arrays",
    "save_sample": "arrays",
    "Matches": "correlate",
    "correlate_edge": "correlate",
    "load_matches": "correlate",
    "save_matches": "correlate",
    "top_k_matches": "correlate",
    "classify": "classes",
    "counts_threshold": "classes",
    "side_classes": "classes",
    "sankey_figure": "sankey",
    "null_edge": "null",
    "Shuffle": "null",
    "load_null": "null",
    "null_thresholds": "null",
    "ControlFiles": "controls",
    "write_threshold_curve": "controls",
    "write_decoder_matches": "matching",
    "write_one_to_one": "matching",
    "write_criteria_table": "matching",
})
