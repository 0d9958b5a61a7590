"""Reads of the explain app: the lineage nodes a job is asked about, the workspace's jobs, and what
explanation and fairness jobs found about a model version, as the typed evidence of
`explain.evidence`. Only succeeded jobs on the file the version's node holds count as evidence
(`Job.objects.evidence`): a job that ran on other bytes is not evidence about this version."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from core.errors import ApplicationError, NotFound
from core.models import Workspace
from explain.evidence import Explanation, FairnessAssessment
from explain.models import Job, JobKind
from lineage.kinds import NodeKind
from lineage.models import Node
from lineage.selectors import version_node

# --- what a job is asked about ------------------------------------------------------------------------


def model_version_node(workspace: Workspace, name: str, version: str) -> Node:
    """The ModelVersion lineage node `<name>@<version>` (the key the registry also uses); 404 if none."""
    return version_node(workspace=workspace, kind=NodeKind.MODEL_VERSION, name=name, version=version)


def dataset_version_node(workspace: Workspace, key: str) -> Node:
    """The DatasetVersion lineage node `key`, which must have its data attached; 400 naming the
    `dataset_version` field otherwise."""
    node = Node.objects.filter(workspace=workspace, kind=NodeKind.DATASET_VERSION, key=key).first()
    if node is None:
        raise ApplicationError(f"no dataset version {key!r} in this workspace", field="dataset_version")
    if node.artifact_id is None:
        raise ApplicationError(
            f"dataset version {key!r} has no data attached (record it with an artifact)",
            field="dataset_version",
        )
    return node


# --- jobs ---------------------------------------------------------------------------------------------


def job_list(
    *,
    workspace: Workspace,
    kind: str = "",
    state: str = "",
    model_node: Node | None = None,
    model: str = "",
) -> QuerySet[Job]:
    """The workspace's jobs, newest first, with their model and dataset nodes and who asked: of one
    `kind`, in one `state`, about one `model_node`, or about models whose key contains `model`."""
    jobs = Job.objects.filter(workspace=workspace)
    if kind:
        jobs = jobs.filter(kind=kind)
    if state:
        jobs = jobs.filter(state=state)
    if model_node is not None:
        jobs = jobs.filter(model_node=model_node)
    if model:
        jobs = jobs.filter(model_node__key__icontains=model)
    return jobs.select_related("model_node", "dataset_node", "created_by").order_by("-created_at")


def job_get(*, workspace: Workspace, job_id: UUID | str) -> Job:
    """One job of the workspace, with its model and dataset nodes; 404 when the workspace has none
    by that id."""
    job = job_list(workspace=workspace).filter(pk=job_id).first()
    if job is None:
        raise NotFound("no such job in this workspace")
    return job


# --- evidence -----------------------------------------------------------------------------------------

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
