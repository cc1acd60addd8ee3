"""The plan: a checked config and everything the workflow builds from it (featureflow.plan.load)."""

from featureflow.plan.load import Plan, load_plan
from featureflow.plan.validate import merge_variants, width_l1_coefficients

__all__ = ["Plan", "load_plan", "merge_variants", "width_l1_coefficients"]
