"""When an SAE is so far off the paper's targets that nothing built on it is a finding.

The reproduction table marks each SAE metric against the paper's target (featureflow.paper: L0
25-35, explained loss > 0.88); an SAE that misses a target by a little (L0 38, explained loss 0.85)
is still a sparse dictionary of features. One that is FAR off is not, and the correlations, counts,
classes and case studies built on its features measure nothing. Far off means any of:

- L0 above FAR_FACTOR x the top of the paper's range (350 features per token), or above
  FAR_L0_SHARE of the SAE's features (a dense code at any width: 205 of 2,048), whichever is lower;
- L0 below the bottom of the paper's range / FAR_FACTOR (2.5: almost no feature fires);
- explained loss below 0: the LM predicts worse with the SAE spliced in than with its MLP ablated;
- explained variance below 0: the reconstruction is further from the activations than their mean.

A NaN fails every rule it appears in. The sae_eval job logs a warning for such an SAE (`warn_off_target`),
and the report names it on the first screen of index.html and reproduction.html/.md.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from featureflow import paper

log = logging.getLogger(__name__)
FAR_FACTOR = 10.0
FAR_L0_SHARE = 0.1
OFF_TARGET_RULE = (f"L0 above {FAR_FACTOR:g}x the top of the paper's {paper.SAE_TARGETS['l0']} or above {FAR_L0_SHARE:.0%} of the SAE's "
        f"features, L0 below 1/{FAR_FACTOR:g} of its bottom, or explained loss or explained variance below 0")


def l0_bounds(d_sae: int) -> tuple[float, float]:
    """(lowest, highest) L0 that is not far off the paper's range, for an SAE of `d_sae` features."""
    lo, hi = paper.SAE_L0
    return lo / FAR_FACTOR, min(FAR_FACTOR * hi, FAR_L0_SHARE * d_sae)


def off_target(metrics: Mapping[str, Any]) -> list[str]:
    """Why the SAE with `metrics` (metrics.json) is far off target, one reason per rule it fails; [] when none."""
    low, high = l0_bounds(int(metrics["d_sae"]))
    l0, reasons = metrics["l0"], []
    if not l0 <= high:
        why = (f"{FAR_FACTOR:g}x the paper's {paper.SAE_TARGETS['l0']}" if high == FAR_FACTOR * paper.SAE_L0[1]
               else f"{FAR_L0_SHARE:.0%} of its {int(metrics['d_sae']):,} features")
        reasons.append(f"L0 {l0:,.1f} > {high:g} ({why})")
    if not l0 >= low:
        reasons.append(f"L0 {l0:,.1f} < {low:g} (1/{FAR_FACTOR:g} of the paper's {paper.SAE_TARGETS['l0']})")
    if not metrics["explained_loss"] >= 0:
        reasons.append(f"explained loss {metrics['explained_loss']:.3f} < 0 (the paper: {paper.SAE_TARGETS['explained_loss']})")
    if "explained_variance" in metrics and not metrics["explained_variance"] >= 0:
        reasons.append(f"explained variance {metrics['explained_variance']:.3f} < 0")
    return reasons


def missed_targets(metrics: Mapping[str, Any]) -> list[str]:
    """Which of the paper's SAE targets (Appendix B: L0 in 25-35, explained loss above 0.88) the SAE with
    `metrics` misses, one phrase each; [] when it meets both. Missing one is not far off (`off_target`)."""
    lo, hi = paper.SAE_L0
    missed = []
    if not lo <= metrics["l0"] <= hi:
        missed.append(f"L0 {metrics['l0']:,.1f} outside {paper.SAE_TARGETS['l0']}")
    if not metrics["explained_loss"] > paper.SAE_EXPLAINED_LOSS_ABOVE:
        missed.append(f"explained loss {metrics['explained_loss']:.3f} not {paper.SAE_TARGETS['explained_loss']}")
    return missed


def off_target_saes(sae_metrics: Mapping[str, Mapping[str, Any] | None]) -> dict[str, list[str]]:
    """{model: reasons} of the SAEs far off target, in the order given (models without metrics are skipped)."""
    return {m: why for m, x in sae_metrics.items() if x and (why := off_target(x))}


def warn_off_target(model: str, metrics: Mapping[str, Any]) -> list[str]:
    """Log a warning (to the job's log and the terminal) when `model`'s SAE is far off target; return the reasons."""
    reasons = off_target(metrics)
    if reasons:
        line = (f"SAE of {model} is far off the paper's targets: {'; '.join(reasons)} "
                f"(L0 {metrics['l0']:,.1f} of {int(metrics['d_sae']):,} features, explained loss {metrics['explained_loss']:.3f}, "
                f"explained variance {metrics.get('explained_variance', float('nan')):.3f}; targets: L0 {paper.SAE_TARGETS['l0']}, "
                f"explained loss {paper.SAE_TARGETS['explained_loss']}). Feature counts and case studies built on it are not findings.")
        log.warning(line)
        if sys.__stderr__ is not None and sys.stderr is not sys.__stderr__:  # a job's log: say it where the run is watched too
            sys.__stderr__.write(f"WARNING: {line}\n")
    return reasons
