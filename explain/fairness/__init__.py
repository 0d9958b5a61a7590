"""Fairness assessments (fairlearn's definitions, computed from counts, with bootstrap intervals):
groups.py finds the groups and the reference group, metrics.py computes the metrics and
disparities, intervals.py the bias-corrected intervals, assessment.py puts the result together."""

from explain.fairness.assessment import assess, clean, fairness_figure, metricframe_by_group
from explain.fairness.groups import FairnessInputError, Groups, groups_of

__all__ = [
    "FairnessInputError",
    "Groups",
    "assess",
    "clean",
    "fairness_figure",
    "groups_of",
    "metricframe_by_group",
]
