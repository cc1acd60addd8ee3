"""Autointerp stage (workflow/rules/interp.smk, results/interp/): explain, simulate and score features
through any OpenAI-compatible endpoint with cost control, Figure 6, and the cost estimate."""

from featureflow.exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "ChatClient": "client",
    "run_interp": "jobs",
    "write_estimate": "jobs",
    "write_summary": "jobs",
})
