"""Report stage (workflow/rules/report.smk, results/): the reproduction table (paper vs this run),
the landing page, and the docs site's config reference generated from the schema."""

from featureflow.exports import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, {
    "load_run": "reproduction",
    "paper_roles": "reproduction",
    "reproduction_rows": "reproduction",
    "scale_rows": "reproduction",
    "tally": "reproduction",
    "to_html": "render",
    "to_markdown": "render",
    "landing_html": "landing",
    "landing_files": "sections",
    "landing_sections": "sections",
    "report_inputs": "sections",
    "ReportPages": "jobs",
    "write_report": "jobs",
    "config_reference": "schema_doc",
})
