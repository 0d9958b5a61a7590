"""Gate checks and promotion: signed gate decisions, promotion requests, reviews and the stage changes
an approval allows, each in one transaction with its audit event (and lineage, where the graph shows
the promotion step)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.utils import timezone

from core import signing
from core.actors import Actor
from core.audit import (
    audit_append,
    audit_append_if_unchanged,
    audit_head,
    one_statement_append_available,
    refusals_audited,
)
from core.canonical_json import normalise
from core.errors import ApplicationError, Conflict, Forbidden, NotFound
from core.models import Membership, Workspace
from core.roles import Role
from governance.gates import evaluate, evaluate_at, evaluation_remember, gate_request_id
from governance.models import (
    TRANSITIONS,
    GateDecision,
    ModelVersion,
    PromotionRequest,
    RequestState,
    Review,
    Stage,
)
from lineage.kinds import NodeKind
from lineage.services import lineage_record
from lineage.specs import Batch, NodeSpec


def _statement(
    version: ModelVersion, stage: str, actor: Actor, evidence_seq: int, result: dict[str, Any]
) -> dict[str, Any]:
    """The decision statement for an evaluation made at `evidence_seq` (not yet signed or stored)."""
    return normalise(
        {
            "decision": str(uuid.uuid4()),
            "workspace": version.registered_model.workspace.slug,
            "model": version.registered_model.name,
            "version": version.version,
            "model_version_node": version.node_id,
            "artifact_sha256": version.artifact.sha256,
            "stage": stage,
            "passed": result["passed"],
            "rules": result["rules"],
            "policies": result["policies"],
            "evaluated_at": timezone.now().isoformat(),
            "evidence_seq": evidence_seq,
            "requested_by": actor.label,
            "key_id": signing.key_id(),
            "algorithm": "Ed25519",
        }
    )


def _unsaved(version: ModelVersion, actor: Actor, statement: dict[str, Any], signature: str) -> GateDecision:
    return GateDecision(
        id=UUID(statement["decision"]),
        workspace=version.registered_model.workspace,
        model_version=version,
        stage=statement["stage"],
        passed=statement["passed"],
        statement=statement,
        signature=signature,
        key_id=statement["key_id"],
        requested_by=actor.user,
    )


def _store(version: ModelVersion, actor: Actor, statement: dict[str, Any], signature: str) -> GateDecision:
    """Store a signed decision (inside the caller's transaction)."""
    decision = _unsaved(version, actor, statement, signature)
    decision.save(force_insert=True)
    return decision


def _gate_event(decision: GateDecision) -> dict[str, Any]:
    """The audit event of a gate check, less the workspace and actor."""
    return {
        "action": "gate.check",
        "target": f"model:{decision.model_version}",
        "payload": {
            "decision": str(decision.pk),
            "stage": decision.stage,
            "passed": decision.passed,
            "failed": [r["rule"] for r in decision.statement["rules"] if r["passed"] is False],
        },
    }


def _decide(
    version: ModelVersion, stage: str, actor: Actor, evidence_seq: int, result: dict[str, Any]
) -> GateDecision:
    """Sign and store the decision for an evaluation made at `evidence_seq` (inside the caller's
    transaction)."""
    statement = _statement(version, stage, actor, evidence_seq, result)
    return _store(version, actor, statement, signing.sign(statement))


def _evaluated_unlocked(
    workspace: Workspace, actor: Actor, version: ModelVersion, stage: str
) -> tuple[int, UUID | None, dict[str, Any], dict[str, Any], str]:
    """Evaluate and sign without holding the chain head: (evidence sequence read first, request,
    result, statement, signature). Valid only if the head still shows that sequence once locked."""
    seq = Workspace.objects.filter(pk=workspace.pk).values_list("evidence_seq", flat=True).get()
    request_id = gate_request_id(version, stage)
    result = evaluate_at(version, stage, request_id, seq, remember=False)
    statement = _statement(version, stage, actor, seq, result)
    return seq, request_id, result, statement, signing.sign(statement)


def gate_check(*, workspace: Workspace, actor: Actor, version: ModelVersion, stage: str) -> GateDecision:
    """Evaluate the gate for `stage`, sign, store and audit the decision at exactly the evidence its
    audit event follows. The evaluation and signature are made before the workspace's audit head is
    locked; the lock is taken only to store and append, and the evidence sequence must then still be
    the one read before evaluating: every change appends to the same chain and moves it, so an
    unchanged sequence means no evidence changed in between (and the result may be remembered for
    it). If it moved, the check is evaluated again under the lock.

    On PostgreSQL outside a transaction (a request), storing and appending is one statement
    (audit_append_if_unchanged): the head is held only while the database runs it. Otherwise, and
    when the evidence moved, _gate_check_locked does it in a transaction of its own making."""
    if one_statement_append_available():
        seq, request_id, result, statement, signature = _evaluated_unlocked(workspace, actor, version, stage)
        decision = _unsaved(version, actor, statement, signature)
        event = _gate_event(decision)
        appended = audit_append_if_unchanged(
            workspace=workspace, actor=actor, evidence_seq=seq, rows=[decision], **event
        )
        if appended is not None:
            evaluation_remember(version, stage, request_id, seq, result)
            return decision
    return _gate_check_locked(workspace=workspace, actor=actor, version=version, stage=stage)


@transaction.atomic
def _gate_check_locked(
    *, workspace: Workspace, actor: Actor, version: ModelVersion, stage: str
) -> GateDecision:
    """gate_check in the caller's transaction (or one of its own): the decision is stored before the
    head is locked (invisible until the transaction commits), so the lock is held for the append
    alone; if the evidence moved meanwhile, the stored decision is deleted and the check evaluated
    again under the lock."""
    seq, request_id, result, statement, signature = _evaluated_unlocked(workspace, actor, version, stage)
    # Stored before the lock too (invisible until the transaction commits): the lock is then held for
    # the append alone, three round trips to the database where each may wait for Python's lock.
    decision = _store(version, actor, statement, signature)
    head = audit_head(workspace)
    if head.evidence_seq == seq:
        evaluation_remember(version, stage, request_id, seq, result)
    else:
        decision.delete()  # evaluated at evidence that has changed since: never seen by anyone
        result = evaluate_at(version, stage, gate_request_id(version, stage), head.evidence_seq)
        decision = _decide(version, stage, actor, head.evidence_seq, result)
    audit_append(workspace=workspace, actor=actor, locked=head, **_gate_event(decision))
    return decision


def _role(workspace: Workspace, user: Any) -> str:
    membership = Membership.objects.filter(workspace=workspace, user=user).first()
    return membership.role if membership else ""


def _record_stage_event(version: ModelVersion, actor: Actor, properties: dict[str, Any]) -> None:
    """A lineage event on the version's node (its properties carry the latest promotion step)."""
    batch = Batch()
    batch.node(NodeSpec(NodeKind.MODEL_VERSION, version.node.key, properties=properties))
    lineage_record(
        workspace=version.registered_model.workspace,
        actor=actor,
        batch=batch,
        source="promotion",
        body=properties,
        audit=False,
    )


@refusals_audited("promotion.request", lambda kw: f"model:{kw['version']}")
@transaction.atomic
def promotion_request(
    *, workspace: Workspace, actor: Actor, version: ModelVersion, stage: str, comment: str = ""
) -> PromotionRequest:
    """Open a request to move `version` to `stage` (one open request per version and stage)."""
    if stage not in TRANSITIONS[Stage(version.stage)]:
        raise Conflict(
            f"{version} is {version.stage or 'in no stage'}; it cannot move to {stage}", field="stage"
        )
    ModelVersion.objects.select_for_update().get(pk=version.pk)
    if PromotionRequest.objects.filter(model_version=version, stage=stage, state=RequestState.OPEN).exists():
        raise Conflict(f"an open request to move {version} to {stage} exists already", field="stage")
    request = PromotionRequest.objects.create(
        workspace=workspace, model_version=version, stage=stage, comment=comment, requested_by=actor.user
    )
    _record_stage_event(
        version, actor, {"promotion": {"request": str(request.pk), "stage": stage, "state": "open"}}
    )
    audit_append(
        workspace=workspace,
        actor=actor,
        action="promotion.request",
        target=f"model:{version}",
        payload={"request": str(request.pk), "stage": stage, "comment": comment},
    )
    return request


@refusals_audited("promotion.review", lambda kw: f"request:{kw['request_id']}")
def review(
    *, workspace: Workspace, actor: Actor, request_id: UUID | str, approve: bool, comment: str
) -> tuple[PromotionRequest, GateDecision | None]:
    """Approve or reject. An approval then tries the transition, re-evaluating the gate inside the
    same transaction; the stage changes only if it passes. Returns (request, decision or None)."""
    if not comment.strip():
        raise ApplicationError("a review needs a comment", field="comment")
    with transaction.atomic():
        request = (
            PromotionRequest.objects.select_for_update()
            .select_related(
                "model_version__registered_model", "model_version__node", "model_version__artifact"
            )
            .filter(workspace=workspace, pk=request_id)
            .first()
        )
        if request is None:
            raise NotFound("no such promotion request in this workspace")
        if request.state != RequestState.OPEN:
            raise Conflict(f"the request is {request.state}", field="request")
        version = request.model_version
        if actor.user is None or actor.user.pk in (version.author_id, request.requested_by_id):
            raise Forbidden("the author of a model version (or of its request) cannot review it")
        role = _role(workspace, actor.user)
        if role not in (Role.COMPLIANCE_REVIEWER, Role.ADMIN):
            raise Forbidden("only compliance reviewers and admins review promotion requests")
        try:
            with transaction.atomic():
                Review.objects.create(
                    request=request, reviewer=actor.user, role=role, approve=approve, comment=comment
                )
        except IntegrityError:
            raise Conflict("you have already reviewed this request", field="request") from None
        action = "promotion.approve" if approve else "promotion.reject"
        audit_append(
            workspace=workspace,
            actor=actor,
            action=action,
            target=f"model:{version}",
            payload={"request": str(request.pk), "comment": comment},
        )
        if not approve:
            request.state, request.closed_at = RequestState.REJECTED, timezone.now()
            request.save(update_fields=["state", "closed_at"])
            _record_stage_event(
                version,
                actor,
                {"promotion": {"request": str(request.pk), "stage": request.stage, "state": "rejected"}},
            )
            return request, None
        decision = _transition(workspace, actor, request)
        return request, decision


def _transition(workspace: Workspace, actor: Actor, request: PromotionRequest) -> GateDecision:
    """Re-evaluate the gate with the request's reviews and, if it passes, change the stage (all in
    the caller's transaction, with the request and the version locked). Never from the evaluation
    cache: the check that moves a stage is evaluated afresh."""
    version = (
        ModelVersion.objects.select_for_update()
        .select_related("registered_model", "node", "artifact")
        .get(pk=request.model_version_id)
    )
    head = audit_head(workspace)  # locked already by the review's own audit event
    decision = _decide(
        version, request.stage, actor, head.evidence_seq, evaluate(version, request.stage, request)
    )
    audit_append(
        workspace=workspace,
        actor=actor,
        action="gate.check",
        target=f"model:{version}",
        payload={
            "decision": str(decision.pk),
            "stage": request.stage,
            "passed": decision.passed,
            "request": str(request.pk),
        },
        locked=head,
    )
    if not decision.passed:
        return decision
    previous = version.stage
    now = timezone.now()
    if request.stage == Stage.PRODUCTION:
        _archive_production(workspace, actor, version, now)
    version.stage, version.stage_changed_at = request.stage, now
    version.save(update_fields=["stage", "stage_changed_at"])
    request.model_version = version  # the caller gets the request with the version's new stage
    request.state, request.closed_at, request.decision = RequestState.COMPLETED, now, decision
    request.save(update_fields=["state", "closed_at", "decision"])
    _record_stage_event(
        version,
        actor,
        {
            "stage": request.stage,
            "promotion": {
                "request": str(request.pk),
                "stage": request.stage,
                "state": "completed",
                "decision": str(decision.pk),
            },
        },
    )
    audit_append(
        workspace=workspace,
        actor=actor,
        action="model.stage",
        target=f"model:{version}",
        payload={
            "from": previous,
            "to": request.stage,
            "request": str(request.pk),
            "decision": str(decision.pk),
        },
    )
    return decision


def _archive_production(workspace: Workspace, actor: Actor, version: ModelVersion, now: Any) -> None:
    """One production version per model: archive the one `version` replaces (rows locked)."""
    for other in (
        ModelVersion.objects.select_for_update()
        .filter(registered_model=version.registered_model, stage=Stage.PRODUCTION)
        .exclude(pk=version.pk)
    ):
        other.stage, other.stage_changed_at = Stage.ARCHIVED, now
        other.save(update_fields=["stage", "stage_changed_at"])
        audit_append(
            workspace=workspace,
            actor=actor,
            action="model.stage",
            target=f"model:{other}",
            payload={"from": Stage.PRODUCTION, "to": Stage.ARCHIVED, "replaced_by": str(version)},
        )
