"""Routing of the controls (yardsticks for "persisting") and the experiments (merge methods, merge path,
widths): which models and edges each covers and the files its jobs read."""

from __future__ import annotations

import dataclasses
from typing import Any

from featureflow.lineage import parse_edge_name
from featureflow.plan.validate import merge_variants, width_l1_coefficients
from featureflow.settings import SAESettings


class ControlRoutes:
    """Controls (featureflow.flow.controls): the SAE seed ceiling, model-seed floors and the shuffle null."""

    def sae_seed_models(self) -> list[str]:
        """Models that get a second SAE of another seed (`controls.sae_seed`; none when it is absent). By
        default the root(s) and the last model, of those whose SAE is trained here: an imported SAE has
        no recipe to repeat."""
        block = self.config["controls"].get("sae_seed")
        if block is None:
            return []
        if block["models"] is not None:
            return list(block["models"])
        variants = merge_variants(self.config)  # the last configured model, not a compared method's sibling
        order = [m for m in self.lineage.order if not self.lineage.models[m].control_of and m not in variants]
        trained = set(self.trained_saes())
        return [m for m in dict.fromkeys([*self.lineage.roots, order[-1]]) if m in trained]

    def control_edge_names(self) -> list[str]:
        return [e.name for e in self.lineage.control_edges]

    def control_files(self) -> dict[str, dict[str, str]]:
        """The controls' stored results as classify and the threshold curve read them (empty parts when off)."""
        return {"sae_seed": {m: self.paths("control_corr", model=m) for m in self.sae_seed_models()},
                "model_seed": {e: self.paths("corr", edge=e) for e in self.control_edge_names()},
                "null": {e: self.paths("null", edge=e) for e in self.edge_names()} if self.null_permutations else {}}

    def control_inputs(self) -> list[str]:
        return sorted(f for files in self.control_files().values() for f in files.values())


class ExperimentRoutes:
    """Experiments (`experiments:`, off by default): merge methods, the merge path, dictionary widths."""

    def merge_method_groups(self) -> dict[str, list[str]]:
        """Each configured merged model and its siblings of the compared methods (`experiments.merge_methods`),
        itself first; empty when no method is compared."""
        methods = self.config["experiments"]["merge_methods"]
        if not methods:
            return {}
        variants = merge_variants(self.config)
        return {m: [m, *(v for v, (orig, _) in variants.items() if orig == m)] for m in self.lineage.merged if m not in variants}

    def merge_path_models(self) -> list[str]:
        """Merged models whose parents' features are followed along the merge path (`experiments.merge_path`)."""
        if not self.config["experiments"]["merge_path"]:
            return []
        variants = merge_variants(self.config)  # the configured merges' paths (a sibling's would repeat the sweep per method)
        return [m for m in self.lineage.merged if m not in variants]

    def merge_path_inputs(self, model: str) -> dict[str, Any]:
        """What the merge-path job of `model` reads, by role (flow.merge_path.MergePathFiles' fields)."""
        m, p = self.lineage.models[model], self.paths
        roles = dict(zip(("first", "second"), m.merge, strict=True))
        base = self.merge_base(model) if m.method == "ties" else None
        return {"model_dirs": {r: p("model_dir", model=n) for r, n in (roles | ({"base": base} if base else {})).items()},
                "sae_dirs": {r: p("sae_dir", model=n) for r, n in roles.items()},
                "acts": {r: p("acts", model=n) for r, n in roles.items()},
                "sample": p("sample"), "sweep_csv": p("merge_sweep", model=model)}

    def merge_path_spec(self, model: str) -> dict[str, Any]:
        """The merge-path job's settings (flow.merge_path.MergePathSpec's fields): the parents, the merge method,
        the lineage's hook and threshold, and the sample positions read per t."""
        m = self.lineage.models[model]
        return {"first": m.merge[0], "second": m.merge[1], "method": m.method, "hook_name": self.sae.hook,
                "threshold": self.threshold, "tokens": int(self.config["experiments"]["merge_path_tokens"])}

    def merge_path_files(self, model: str) -> list[str]:
        """The files behind `merge_path_inputs` (a folder stands for its weights)."""
        inputs, p = self.merge_path_inputs(model), self.paths
        m = self.lineage.models[model]
        models = [*m.merge, *([self.merge_base(model)] if "base" in inputs["model_dirs"] else [])]
        return ([p("model_weights", model=n) for n in models] + [p("sae_weights", model=n) for n in m.merge]
                + list(inputs["acts"].values()) + [inputs["sample"], inputs["sweep_csv"]])

    def widths(self) -> list[int]:
        """Expansion factors of the width sweep, the lineage's own among them, ascending; empty when off."""
        listed = width_l1_coefficients(self.config)
        return sorted({*listed, self.sae.expansion_factor}) if listed else []

    def trained_widths(self) -> list[int]:
        """The sweep's widths that get SAEs of their own (all but the lineage's, whose SAEs exist)."""
        return [w for w in self.widths() if w != self.sae.expansion_factor]

    def sweep_models(self) -> list[str]:
        """Models an SAE sweep (widths, architectures) covers: those of the configured lineage whose SAE is
        trained here (an imported SAE has one recipe; seed controls and compared merge methods' siblings are left out)."""
        variants = merge_variants(self.config)
        return [m for m in self.trained_saes() if not self.lineage.models[m].control_of and m not in variants]

    def width_models(self) -> list[str]:
        """Models the width sweep covers (sweep_models)."""
        return self.sweep_models() if self.widths() else []

    def width_edges(self) -> list[str]:
        """Lineage edges between two models of the width sweep."""
        models = set(self.width_models())
        return [e.name for e in self.lineage.edges if e.source in models and e.target in models]

    def sae_at_width(self, width: int) -> SAESettings:
        """The lineage's SAE recipe with another expansion factor (and the width's own L1 coefficient, if set)."""
        l1 = width_l1_coefficients(self.config).get(int(width))  # standard only (check_config)
        options = {**self.sae.options, "l1_coefficient": float(l1)} if l1 is not None else self.sae.options
        return dataclasses.replace(self.sae, expansion_factor=int(width), options=options)

    def width_seed_models(self) -> list[str]:
        """Models of the sweep with a seed ceiling at every width: those of `controls.sae_seed`."""
        return [m for m in self.sae_seed_models() if m in self.width_models()]

    def width_file(self, key: str, width: int, **wildcards: str) -> str:
        """File `key` ("sae_metrics", "acts", "corr", "seed_acts", "seed_corr") at one width of the sweep:
        at the lineage's own width, the lineage's own file (the seed control's for "seed_*")."""
        if int(width) == self.sae.expansion_factor:
            return self.paths(key.replace("seed_", "control_"), **wildcards)
        return self.paths(f"width_{key}", width=str(width), **wildcards)

    def width_edge_acts(self, edge: str, width: int) -> dict[str, str]:
        """The activation files of an edge's two models at one width: {"source": ..., "target": ...}."""
        source, target = parse_edge_name(edge)
        return {"source": self.width_file("acts", width, model=source), "target": self.width_file("acts", width, model=target)}

    def widths_inputs(self) -> dict[str, dict[str, dict[str, str]]]:
        """What the widths table reads, by role and width: SAE metrics per model, correlations per edge, and
        each seed-ceiling model's correlation with its second SAE."""
        ws = self.widths()
        return {"metrics": {str(w): {m: self.width_file("sae_metrics", w, model=m) for m in self.width_models()} for w in ws},
                "corr": {str(w): {e: self.width_file("corr", w, edge=e) for e in self.width_edges()} for w in ws},
                "ceiling": {str(w): {m: self.width_file("seed_corr", w, model=m) for m in self.width_seed_models()} for w in ws}}

    def widths_spec(self) -> dict[str, Any]:
        """The widths table's settings (flow.widths.WidthSpec's fields)."""
        names = set(self.width_edges())
        edges = [{"source": e.source, "target": e.target, "kind": e.kind} for e in self.lineage.edges if e.name in names]
        return {"widths": self.widths(), "own": self.sae.expansion_factor, "models": self.width_models(), "edges": edges,
                "threshold": self.threshold,
                "l1_coefficients": {str(w): l1 for w in self.widths() if (l1 := self.sae_at_width(w).options.get("l1_coefficient")) is not None}}
