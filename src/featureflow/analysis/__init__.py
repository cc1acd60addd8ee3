"""Analysis stage (workflow/rules/analysis.smk, results/analysis/): per-feature statistics, the LLR
proxy, and the paper's case studies (Figures 3 and 4)."""

from featureflow.exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "StatsSizes": "features",
    "feature_stats": "features",
    "hypothesis_tokens": "features",
    "llr_scores": "features",
    "load_feature_stats": "features",
    "token_texts": "features",
    "top_blocks": "features",
    "block_activations": "features",
    "windows_activations": "features",
    "write_feature_stats": "features",
    "build_browser": "browser",
    "write_threshold": "browser",
    "find_case_studies": "case_studies",
    "write_case_studies": "case_studies",
})
