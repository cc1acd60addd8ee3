"""Routing of the architectures experiment (`experiments.architectures`): which models and edges it covers,
each architecture's SAE settings, and the files its jobs read."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from featureflow.config import SCHEMA_PATH, architecture_defaults, load_schema
from featureflow.lineage import parse_edge_name
from featureflow.plan.validate import architecture_entries
from featureflow.settings import SAESettings

K_FROM_L0 = None  # an unset TopK `k`: the model's lineage SAE's measured L0 (featureflow.sae.train.with_measured_k)


@functools.cache
def _defaults(name: str) -> tuple[tuple[str, Any], ...]:
    return tuple(architecture_defaults(load_schema(SCHEMA_PATH), name).items())


class ArchitectureRoutes:
    """SAEs of other architectures at the lineage's width, every edge correlated at each (flow/architectures.csv)."""

    def architectures(self) -> list[str]:
        """The experiment's architectures, the lineage's own first; empty when off."""
        listed = list(architecture_entries(self.config))
        return list(dict.fromkeys([self.sae.architecture, *listed])) if listed else []

    def trained_architectures(self) -> list[str]:
        """Those that get SAEs of their own (all but the lineage's, whose SAEs exist)."""
        return [a for a in self.architectures() if a != self.sae.architecture]

    def architecture_models(self) -> list[str]:
        """Models the experiment covers: those the width sweep would (sweep_models)."""
        return self.sweep_models() if self.architectures() else []

    def architecture_edges(self) -> list[str]:
        models = set(self.architecture_models())
        return [e.name for e in self.lineage.edges if e.source in models and e.target in models]

    def architecture_seed_models(self) -> list[str]:
        """Models with a seed ceiling per architecture: those of `controls.sae_seed`."""
        return [m for m in self.sae_seed_models() if m in self.architecture_models()]

    def k_from_l0(self, arch: str) -> bool:
        """Whether the SAEs of `arch` take `k` from their model's lineage SAE's L0 (a TopK family entry without `k`)."""
        return "k" in dict(_defaults(arch)) and "k" not in architecture_entries(self.config).get(arch, {})

    def sae_with_architecture(self, arch: str) -> SAESettings:
        """The lineage's SAE recipe with another architecture: its schema defaults, then the entry's own keys
        (`k` None when it comes from the measured L0)."""
        options = {**dict(_defaults(arch)), **architecture_entries(self.config).get(arch, {})}
        if self.k_from_l0(arch):
            options["k"] = K_FROM_L0
        return dataclasses.replace(self.sae, architecture=arch, options=options)

    def sae_architecture_inputs(self, model: str, arch: str) -> dict[str, Any]:
        """What an architecture's SAE job reads: the model and tokens of the lineage SAE, and its metrics when
        `k` comes from their L0."""
        inputs: dict[str, Any] = {"weights": self.paths("model_weights", model=model),
                                  "tokens": self.lineage_token_files(model, "train")}
        return inputs | ({"l0_from": self.paths("sae_metrics", model=model)} if self.k_from_l0(arch) else {})

    def architecture_file(self, key: str, arch: str, **wildcards: str) -> str:
        """File `key` ("sae_metrics", "sae_extra", "acts", "corr", "seed_acts", "seed_corr") of one architecture: for the
        lineage's own, the lineage's own file (the seed control's for "seed_*")."""
        if arch == self.sae.architecture:
            return self.paths(key.replace("seed_", "control_"), **wildcards)
        return self.paths(f"arch_{key}", arch=arch, **wildcards)

    def architecture_edge_acts(self, edge: str, arch: str) -> dict[str, str]:
        source, target = parse_edge_name(edge)
        return {"source": self.architecture_file("acts", arch, model=source), "target": self.architecture_file("acts", arch, model=target)}

    def architectures_inputs(self) -> dict[str, dict[str, dict[str, str]]]:
        """What the architectures table reads, by role and architecture (as widths_inputs)."""
        archs = self.architectures()
        f = self.architecture_file
        return {"metrics": {a: {m: f("sae_metrics", a, model=m) for m in self.architecture_models()} for a in archs},
                "corr": {a: {e: f("corr", a, edge=e) for e in self.architecture_edges()} for a in archs},
                "ceiling": {a: {m: f("seed_corr", a, model=m) for m in self.architecture_seed_models()} for a in archs},
                "extra": {a: {m: f("sae_extra", a, model=m) for m in self.architecture_models()} for a in archs}}

    def architectures_spec(self) -> dict[str, Any]:
        """The architectures table's settings (flow.architectures.ArchitectureSpec's fields)."""
        names = set(self.architecture_edges())
        edges = [{"source": e.source, "target": e.target, "kind": e.kind} for e in self.lineage.edges if e.name in names]
        settings = {a: {k: ("L0 of the lineage SAE" if v is K_FROM_L0 and k == "k" else v)
                        for k, v in self.sae_with_architecture(a).options.items()} for a in self.architectures()}
        return {"architectures": self.architectures(), "own": self.sae.architecture, "models": self.architecture_models(),
                "edges": edges, "threshold": self.threshold, "settings": settings}
