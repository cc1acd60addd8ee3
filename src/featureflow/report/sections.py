"""What the landing page (results/index.html) links, by section, and every file the report rule reads.

Labels and notes of the landing page live here, in the report stage; the plan says which files exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureflow.paths import TEMPLATES

if TYPE_CHECKING:
    from featureflow.plan import Plan


def landing_sections(plan: Plan) -> list[dict[str, Any]]:
    """What the landing page links, by section; paths relative to the results folder."""
    order, merged, interp = plan.lineage.order, plan.lineage.merged, plan.config["interp"]["enabled"]
    t = TEMPLATES

    def fig(label: str, html: str, png: str | None = None, note: str = "", **wc: str) -> dict[str, Any]:
        item = {"label": label, "path": t[html].format(**wc), "note": note}
        return item | ({"thumb": t[png].format(**wc), "also": [("PNG", t[png].format(**wc))]} if png and plan.png else {})

    figures = [fig("Figure 2: feature flow along the lineage (Sankey)", "sankey_html", "sankey_png"),
               fig("Persisting share against the threshold, with the seed controls and the null", "threshold_curve_html",
                   "threshold_curve_png")]
    figures += [fig(f"Figure 5: merging {m} along t", "merge_figure_html", "merge_figure_png", model=m) for m in merged]
    if plan.merge_method_groups():
        figures.append(fig("Merge methods compared (experiment)", "merge_methods_html", "merge_methods_png"))
    figures += [fig(f"{m}: each parent's features along the merge path (experiment)", "merge_path_html", "merge_path_png",
                    model=m) for m in plan.merge_path_models()]
    if plan.width_edges():
        figures.append(fig("Persisting share against the SAE's width (experiment)", "widths_html", "widths_png"))
    if plan.architecture_edges():
        figures.append(fig("Persisting share by SAE architecture, with each one's seed ceiling (experiment)", "architectures_html",
                           "architectures_png"))
    figures += [fig("Figure 3: the persisting feature (case study a)", "fig3_html"),
                fig("Figure 4: the disappearing feature (case study b)", "fig4_html")]
    if interp:
        figures.append(fig("Figure 6: explanation scores, persisting vs other", "interp_fig6_html", "interp_fig6_png"))
    saes = [fig(f"{m}: feature density", "sae_density_html", "sae_density_png", model=m) for m in order]
    if plan.lineage.trained:
        saes.append(fig("Training curves of the language models (loss, learning rate)", "lm_curves_html", "lm_curves_png"))
    if plan.trained_saes():
        saes.append(fig("Training curves of the SAEs (loss, MSE, L0, dead share)", "sae_curves_html", "sae_curves_png"))
    browser = [{"label": f"{m}: every feature", "path": t["browser_index"].format(model=m),
                "note": "sortable index; each feature's page has its contexts, tokens, logit effects and partners"} for m in order]
    tables = [{"label": label, "path": t[key], "note": note} for key, label, note in (
        ("counts", "counts.csv", "persisting / emerging / disappearing per edge and the paper's counts"),
        ("edges", "edges.csv", "every feature's class and best partner on every edge"),
        ("sae_table", "sae/metrics.tsv", "L0, MSE, explained variance and loss, dead and dense features per SAE"),
        ("eval_table", "lm/eval.tsv", "next-token loss and accuracy of every model on every corpus"),
        ("token_summary", "data/tokens/summary.tsv", "documents, characters and tokens per corpus"),
        ("case_studies", "analysis/case_studies.json", "the features the case studies found, with LLRs and correlations"))]
    if plan.config["controls"]["compare_criteria"]:
        tables.append({"label": "criteria.csv", "path": t["criteria"],
                       "note": "persisting pairs per matching criterion per edge, and their agreement with best partners"})
    if plan.width_edges():
        tables += [{"label": "widths.csv", "path": t["widths"], "note": "persisting and emerging shares per edge at every SAE width"},
                   {"label": "widths_saes.csv", "path": t["widths_saes"], "note": "every SAE of the width sweep: L0, losses, targets"}]
    if plan.architecture_edges():
        tables += [{"label": "architectures.csv", "path": t["architectures"],
                    "note": "persisting share and share of the seed ceiling per edge and SAE architecture"},
                   {"label": "architectures_saes.csv", "path": t["architectures_saes"],
                    "note": "every SAE of the architectures experiment: settings, L0, losses, dead share"}]
    tables += [{"label": f"{m}: features.csv", "path": t["feature_table"].format(model=m),
                "note": "per-feature statistics and LLRs"} for m in order]
    autointerp = [{"label": "estimate.json", "path": t["interp_estimate"],
                   "note": "what explaining the selected features would send and cost; token categories"}]
    if interp:
        autointerp += [{"label": "summary.json", "path": t["interp_summary"], "note": "scores, costs, failures, categories"}]
        autointerp += [{"label": f"{m}.jsonl", "path": t["interp_jsonl"].format(model=m)} for m in order]
    return [{"title": "Figures", "items": figures},
            {"title": "Feature browser", "items": browser},
            {"title": "Sparse autoencoders", "items": saes},
            {"title": "Tables", "items": tables},
            {"title": "Autointerp", "items": autointerp,
             "note": "" if interp else "Not run (interp.enabled is false): only the cost estimate."}]

def landing_files(plan: Plan) -> list[str]:
    """Every file the landing page links or shows, under the results folder."""
    rels = {x[k] for sec in landing_sections(plan) for x in sec["items"] for k in ("path", "thumb") if x.get(k)}
    return sorted(f"{plan.paths.root}/{r}" for r in rels)

def report_inputs(plan: Plan) -> list[str]:
    """Every file the report rule reads or links."""
    files = plan.report_files()
    flat = [f for v in files.values() for f in (v.values() if isinstance(v, dict) else [v])]
    return sorted(set(flat + landing_files(plan)))
