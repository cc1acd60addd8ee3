"""The matching criteria: what classify may call "the same feature" along an edge, one entry each.

Each entry says where its per-edge matches are stored (a `featureflow.paths` key, and the file's
template when it writes one of its own: `featureflow.paths.TEMPLATES` takes it from here; every criterion
writes a `Matches` npz, so classify, the criteria table, the Sankey and the browser read any of them
alike), what it compares, what the threshold is a bound on, and whether a job of its own computes it.
The plan, the browser's inputs, the criteria table and the config checks follow from this table; the
schema's `criterion` enum lists the same names (tested). The matching functions live in the flow stage
(`featureflow.flow.matching`, `featureflow.flow.correlate`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Criterion:
    """One matching criterion (see the module docstring)."""

    name: str
    result: str  # featureflow.paths key of its per-edge matches file
    compares: str  # "activations" (correlations on the common sample) or "decoders" (SAE weights only)
    threshold: str  # what the config's `threshold` bounds under this criterion
    path: str | None = None  # the template of its per-edge file under the results folder, when a job of its own writes one

    @property
    def own_job(self) -> bool:
        """Computed by a rule of its own (workflow/rules/criteria.smk), which writes `path`; else `result` is read as it is."""
        return self.path is not None

    @property
    def correlations(self) -> bool:
        """Scores are activation correlations, so a correlation threshold (and the shuffle null's) applies."""
        return self.compares == "activations"


CRITERIA: dict[str, Criterion] = {c.name: c for c in (
    Criterion("best_partner", result="corr", compares="activations",
              threshold="the activation correlation with the best partner (two features may share one)"),
    Criterion("one_to_one", result="one_to_one", compares="activations", path="flow/one_to_one/{edge}.npz",
              threshold="the activation correlation with the one partner of a one-to-one assignment"),
    Criterion("decoder_cosine", result="decoder_cosine", compares="decoders", path="flow/decoder_cosine/{edge}.npz",
              threshold="the cosine of the two SAEs' decoder directions (not a correlation's scale)"),
)}
