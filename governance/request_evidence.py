"""What a reviewer reads before deciding on a promotion request: the request's evidence gathered in one
place (the gate evaluated afresh, the model card, fairness, explanation, provenance, budgets, reviews),
and the version it is compared with. Workspace-scoped like every selector."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import F

from core.errors import NotFound
from core.models import Workspace
from explain.evidence import Explanation, FairnessAssessment
from explain.models import Job, JobState
from explain.selectors import latest_explanation, latest_fairness_assessments
from governance import checks, gates
from governance.models import (
    Datasheet,
    DatasheetKind,
    ModelVersion,
    PromotionRequest,
    Review,
    Stage,
)
from governance.selectors import (
    DatasetDatasheet,
    dataset_datasheets,
    dataset_node_ids,
    datasheet_view,
    gate_rule_documents,
    reviews_prefetch,
)
from lineage.kinds import EdgeKind
from lineage.models import Edge, Node
from lineage.stores import get_graph_store
from lineage.stores.base import Subgraph
from privacy.models import PrivacyBudget


@dataclass(frozen=True)
class VersionEvidence:
    """What the request page compares between two versions of a model: the metrics recorded with it,
    its newest fairness assessment per set of sensitive features, its newest explanation and the
    data it was trained on."""

    version: ModelVersion
    fairness: list[FairnessAssessment]
    explanation: Explanation | None
    training: list[Node]

    @property
    def evaluation_data(self) -> list[str]:
        """The dataset versions its fairness assessments and its explanation ran on."""
        keys = {a.data.dataset if a.data is not None and a.data.dataset else a.dataset for a in self.fairness}
        if self.explanation is not None:
            keys.add(self.explanation.dataset)
        return sorted(key for key in keys if key)


def version_in_stage(*, version: ModelVersion, stage: str) -> ModelVersion | None:
    """The other version of the same model now in `stage` (the latest to enter it), if any."""
    return (
        ModelVersion.objects.filter(registered_model_id=version.registered_model_id, stage=stage)
        .exclude(pk=version.pk)
        .select_related("registered_model", "node")
        .order_by(F("stage_changed_at").desc(nulls_last=True), "-created_at")
        .first()
    )


def version_before(*, version: ModelVersion) -> ModelVersion | None:
    """The model's version registered last before `version` that is still in use (not archived)."""
    return (
        ModelVersion.objects.filter(
            registered_model_id=version.registered_model_id, created_at__lt=version.created_at
        )
        .exclude(stage=Stage.ARCHIVED)
        .select_related("registered_model", "node")
        .order_by("-created_at")
        .first()
    )


def version_evidence(*, version: ModelVersion) -> VersionEvidence:
    """The version's metrics, newest fairness assessments and explanation, and training data."""
    trained_on = Edge.objects.filter(src_id=version.node_id, kind=EdgeKind.TRAINED_ON).values("dst_id")
    return VersionEvidence(
        version=version,
        fairness=latest_fairness_assessments(model_node=version.node),
        explanation=latest_explanation(model_node=version.node),
        training=list(Node.objects.filter(pk__in=trained_on).order_by("key")),
    )


@dataclass(frozen=True)
class RequestEvidence:
    """Everything a reviewer reads before deciding on a promotion request."""

    promotion: PromotionRequest
    gate: dict[str, Any]
    rule_documents: dict[tuple[str, int, str], dict]  # the gate's rules as their policies wrote them
    card: Datasheet | None
    card_view: dict[str, Any] | None
    fairness: list[FairnessAssessment]
    explanation: Explanation | None
    running: list[Job]
    provenance: Subgraph
    training: list[Node]
    datasheets: list[DatasetDatasheet]  # of the training data
    budgets: list[PrivacyBudget]
    reviews: list[Review]
    # What the request is compared with: the version now in the requested stage ("stage"), or when
    # none is, the version registered before it, unless archived ("before"); None when neither is.
    incumbent: VersionEvidence | None
    incumbent_basis: str
    dataset_nodes: dict[str, int]  # lineage node ids of the dataset versions the page names

    @property
    def version(self) -> ModelVersion:
        """The model version the request would promote."""
        return self.promotion.model_version

    @property
    def current(self) -> VersionEvidence:
        """The requested version's side of the comparison with the incumbent."""
        return VersionEvidence(self.version, self.fairness, self.explanation, self.training)

    def reviewed_by(self, user: Any) -> bool:
        """Whether `user` has reviewed the request already."""
        return any(r.reviewer_id == user.pk for r in self.reviews)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def promotion_request_evidence(*, workspace: Workspace, request_id: UUID | str) -> RequestEvidence:
    """The request with the gate evaluated afresh (never from the cache: a reviewer reads the evidence
    as it is), the model card, fairness and explanation evidence, the work still running on the
    version, its provenance, the privacy budgets of its training data and the reviews so far."""
    promotion = (
        PromotionRequest.objects.filter(workspace=workspace, pk=request_id)
        .select_related(
            "model_version__registered_model__workspace",
            "model_version__node",
            "model_version__artifact",
            "requested_by",
        )
        .prefetch_related(reviews_prefetch())
        .first()
    )
    if promotion is None:
        raise NotFound("no such promotion request in this workspace")
    version = promotion.model_version
    card = Datasheet.objects.filter(subject=version.node, kind=DatasheetKind.MODEL_CARD).first()
    card_view = datasheet_view(sheet=card) if card else None
    training = checks.Context(version, promotion.stage, promotion).training_datasets
    gate = gates.evaluate(version, promotion.stage, promotion)
    fairness = latest_fairness_assessments(model_node=version.node)
    explanation = latest_explanation(model_node=version.node)
    compared, basis = version_in_stage(version=version, stage=promotion.stage), "stage"
    if compared is None:
        compared, basis = version_before(version=version), "before"
    incumbent = version_evidence(version=compared) if compared is not None else None
    content = card_view["content"] if card_view else {}
    named = {
        *_strings([r["evidence"] for r in gate["rules"]]),
        *_strings([(content.get(s) or {}).get("datasets") for s in ("training_data", "evaluation_data")]),
    }
    sides = [(fairness, explanation)] + ([(incumbent.fairness, incumbent.explanation)] if incumbent else [])
    for assessments, explained in sides:
        named.update(a.dataset for a in assessments)
        named.update(a.data.dataset for a in assessments if a.data is not None)
        if explained is not None:
            named.add(explained.dataset)
    return RequestEvidence(
        promotion=promotion,
        gate=gate,
        rule_documents=gate_rule_documents(workspace=workspace, gate=gate),
        card=card,
        card_view=card_view,
        fairness=fairness,
        explanation=explanation,
        running=list(
            Job.objects.filter(model_node=version.node, state__in=[JobState.QUEUED, JobState.RUNNING])
        ),
        provenance=get_graph_store(workspace).upstream(version.node_id, depth=10),
        training=training,
        datasheets=dataset_datasheets(nodes=training),
        budgets=list(PrivacyBudget.objects.filter(dataset_node__in=training).select_related("dataset_node")),
        reviews=list(promotion.reviews.all()),
        incumbent=incumbent,
        incumbent_basis=basis if incumbent is not None else "",
        dataset_nodes={
            **dataset_node_ids(workspace=workspace, keys=named - {n.key for n in training}),
            **{n.key: n.pk for n in training},
        },
    )
