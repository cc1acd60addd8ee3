"""The target list: every final output of the workflow for a config (rule `all`)."""

from __future__ import annotations

from featureflow.paths import SPLITS


class TargetList:
    """`targets()`: what `snakemake` builds, stage by stage."""

    def targets(self) -> list[str]:
        """Every final output of the workflow for this config."""
        p, fig, order = self.paths, self.figure_files, self.lineage.order
        out = [p("tokenizer_meta"), p("token_summary")]
        out += [p("tokens", corpus=c, split=s) for c in self.used_corpora() for s in SPLITS]
        out += [p("mixture", model=m, split=s) for m in self.lineage.trained for s in SPLITS]
        out += [p("model_eval", model=m) for m in self.evaluated_models()] + [p("eval_table")]
        out += fig("lm_curves_html", "lm_curves_png") if self.lineage.trained else []
        out += [f for m in self.lineage.merged for f in [p("merge_choice", model=m), *fig("merge_figure_html", "merge_figure_png", model=m)]]
        out += [p("sae_metrics", model=m) for m in order] + [p("sae_table")]
        out += fig("sae_curves_html", "sae_curves_png") if self.trained_saes() else []
        if self.lineage.edges:
            out += [p("edges"), p("counts"), *fig("sankey_html", "sankey_png")]
            out += self.control_inputs() + fig("threshold_curve_html", "threshold_curve_png")
            out += [f for files in self.criteria_files().values() for f in files.values()]
            if self.config["controls"]["compare_criteria"]:
                out.append(p("criteria"))
            out += [p("feature_table", model=m) for m in order]
            out += [p(key) for key in ("case_studies", "fig3_html", "fig4_html", "browser_threshold")]
            out += [f for m in self.merge_path_models() for f in [p("merge_path", model=m), *fig("merge_path_html", "merge_path_png", model=m)]]
            out += [p("merge_methods"), *fig("merge_methods_html", "merge_methods_png")] if self.merge_method_groups() else []
            out += [p("widths"), p("widths_saes"), *fig("widths_html", "widths_png")] if self.width_edges() else []
            out += [p("architectures"), p("architectures_saes"), *fig("architectures_html", "architectures_png")] if self.architecture_edges() else []
            out += [p("browser_index", model=m) for m in order]
            out.append(p("interp_estimate"))
            if self.config["interp"]["enabled"]:
                out += [p("interp_jsonl", model=m) for m in order] + [p("interp_summary"), *fig("interp_fig6_html", "interp_fig6_png")]
            out += [p(key) for key in ("reproduction_md", "reproduction_html", "landing")]
        return out
