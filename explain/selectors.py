"""Reads of what explanation and fairness jobs found about a model version, as the typed evidence of
`explain.evidence`. Only succeeded jobs on the file the version's node holds count
(`Job.objects.evidence`): a job that ran on other bytes is not evidence about this version."""

from __future__ import annotations

from explain.evidence import Explanation, FairnessAssessment
from explain.models import Job, JobKind
from lineage.models import Node

# How many of a version's newest assessments a lookup reads: enough for every set of sensitive
# features a reviewer asks about, few enough that a gate evaluation stays one small query.
EVIDENCE_WINDOW = 50


def fairness_assessments_of(*, model_node: Node, limit: int = EVIDENCE_WINDOW) -> list[FairnessAssessment]:
    """The version's fairness assessments, newest first (at most `limit`)."""
    jobs = Job.objects.evidence(model_node, JobKind.FAIRNESS).select_related("dataset_node")[:limit]
    return [FairnessAssessment.from_job(job) for job in jobs]


def latest_fairness_assessment(
    *, model_node: Node, sensitive_feature: str | None = None
) -> FairnessAssessment | None:
    """The newest assessment whose groups are formed by `sensitive_feature` (alone or with others),
    or the newest of all when no feature is named."""
    if sensitive_feature is None:
        return next(iter(fairness_assessments_of(model_node=model_node, limit=1)), None)
    assessments = fairness_assessments_of(model_node=model_node)
    return next((a for a in assessments if a.covers(sensitive_feature)), None)


def latest_fairness_assessments(*, model_node: Node) -> list[FairnessAssessment]:
    """The newest assessment for each set of sensitive features (a reviewer reads "sex" and "sex,
    race" both), ordered by the features."""
    latest: dict[tuple[str, ...], FairnessAssessment] = {}
    for assessment in fairness_assessments_of(model_node=model_node):
        latest.setdefault(assessment.sensitive_features, assessment)
    return [latest[features] for features in sorted(latest)]


def latest_explanation(*, model_node: Node) -> Explanation | None:
    """The version's newest explanation."""
    job = Job.objects.evidence(model_node, JobKind.EXPLANATION).select_related("dataset_node").first()
    return Explanation.from_job(job) if job is not None else None
