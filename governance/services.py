"""Registry, datasheets, policies, gates and promotion: the writes, each in one transaction with its
audit event (and lineage, where the graph should show it)."""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from typing import Any

import jsonschema
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from core import signing
from core.actors import Actor
from core.audit import audit_append, audit_head
from core.errors import ApplicationError, Conflict, FieldError, NotFound
from core.models import Artifact, Membership, Workspace
from core.roles import Role
from explain.selectors import latest_fairness_assessment
from governance import checks, datasheets
from governance.models import (
    TRANSITIONS,
    Alias,
    Datasheet,
    DatasheetKind,
    GateDecision,
    ModelVersion,
    Policy,
    PromotionRequest,
    RegisteredModel,
    RequestState,
    Review,
    Stage,
)
from lineage.kinds import EdgeKind, NodeKind
from lineage.models import Edge, Node
from lineage.services import lineage_record
from lineage.specs import Batch, NodeSpec


class Forbidden(ApplicationError):
    status = 403
    title = "Forbidden"


# --- registry -----------------------------------------------------------------------------------------


def model_get(workspace: Workspace, name: str) -> RegisteredModel:
    model = RegisteredModel.objects.filter(workspace=workspace, name=name).first()
    if model is None:
        raise NotFound(f"no registered model {name!r} in this workspace")
    return model


VERSION_RELATED = ("registered_model", "node", "author", "artifact")


def version_get(
    workspace: Workspace, name: str, version: str, *, related: tuple[str, ...] = VERSION_RELATED
) -> ModelVersion:
    """`name@version` (or `name@alias`) in the workspace, with the `related` rows joined in."""
    try:
        # get(), not first(): the lookup is unique, and first() would sort by the model's ordering.
        found = (
            ModelVersion.objects.select_related(*related)
            .filter(registered_model__workspace=workspace, registered_model__name=name)
            .get(version=version)
        )
    except ModelVersion.DoesNotExist:
        alias = Alias.objects.filter(
            registered_model__workspace=workspace, registered_model__name=name, name=version
        ).first()
        if alias is not None:
            return version_get(workspace, name, alias.version.version, related=related)
        raise NotFound(f"no registered version {name}@{version} in this workspace") from None
    if "registered_model" in related:
        found.registered_model.workspace = workspace  # the caller's row: no join, no second read
    return found


def _check_model_artifact(workspace: Workspace, artifact_id: str) -> Artifact:
    """The model file, checked without deserialising it: the web process never loads a model."""
    from explain.loading import ModelLoadError, model_artifact_check

    artifact = Artifact.objects.filter(workspace=workspace, pk=artifact_id).first()
    if artifact is None:
        raise ApplicationError(f"no artifact {artifact_id} in this workspace", field="artifact")
    try:
        model_artifact_check(artifact, workspace)
    except ModelLoadError as error:
        raise ApplicationError(str(error), field="artifact") from error
    return artifact


# Model names, versions and aliases: they appear in lineage keys, URLs and audit targets.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


def _check_name(value: str, field: str) -> None:
    if not re.fullmatch(NAME_PATTERN, value):
        raise ApplicationError(
            f"{field} {value[:60]!r} is not a valid name: 1 to 100 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            field=field,
        )


@transaction.atomic
def version_register(
    *,
    workspace: Workspace,
    actor: Actor,
    name: str,
    version: str,
    artifact: str,
    description: str = "",
    metrics: dict[str, Any] | None = None,
    run: dict[str, Any] | None = None,
    datasets: list[str] | None = None,
    commit: dict[str, Any] | None = None,
    environment: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register `name@version` with its model artifact, writing its lineage in the same transaction:
    ModelVersion VERSION_OF Model, and when a run is given: the run produced it from the dataset
    versions (TRAINED_ON), from the commit, in the environment."""
    _check_name(name, "name")
    _check_name(version, "version")
    stored = _check_model_artifact(workspace, artifact)
    if ModelVersion.objects.filter(
        registered_model__workspace=workspace, registered_model__name=name, version=version
    ).exists():
        raise Conflict(f"{name}@{version} is already registered", field="version")
    key = f"{name}@{version}"
    batch = Batch()
    model_ref = batch.node(NodeSpec(NodeKind.MODEL, name))
    version_ref = batch.node(
        NodeSpec(NodeKind.MODEL_VERSION, key, properties={"metrics": metrics or {}}, artifact=str(stored.pk))
    )
    batch.edge(EdgeKind.VERSION_OF, version_ref, model_ref)
    if run:
        run_ref = batch.node(NodeSpec(NodeKind.RUN, run["key"], properties=run.get("properties") or {}))
        batch.edge(EdgeKind.PRODUCED, run_ref, version_ref)
        if run.get("job"):
            batch.edge(EdgeKind.INSTANCE_OF, run_ref, batch.node(NodeSpec(NodeKind.JOB, run["job"])))
        for dataset in datasets or []:
            dataset_ref = batch.node(NodeSpec(NodeKind.DATASET_VERSION, dataset))
            batch.edge(EdgeKind.USED, run_ref, dataset_ref)
            batch.edge(EdgeKind.TRAINED_ON, version_ref, dataset_ref)
        if commit:
            ref = batch.node(
                NodeSpec(NodeKind.COMMIT, commit["key"], properties=commit.get("properties") or {})
            )
            batch.edge(EdgeKind.BUILT_FROM, run_ref, ref)
        if environment:
            ref = batch.node(
                NodeSpec(
                    NodeKind.ENVIRONMENT, environment["key"], properties=environment.get("properties") or {}
                )
            )
            batch.edge(EdgeKind.RAN_IN, run_ref, ref)
    elif datasets:
        for dataset in datasets:
            batch.edge(
                EdgeKind.TRAINED_ON, version_ref, batch.node(NodeSpec(NodeKind.DATASET_VERSION, dataset))
            )
    counts = lineage_record(
        workspace=workspace, actor=actor, batch=batch, source="registry", body={"register": key}, audit=False
    )
    model_node = Node.objects.get(workspace=workspace, kind=NodeKind.MODEL, key=name)
    version_node = Node.objects.get(workspace=workspace, kind=NodeKind.MODEL_VERSION, key=key)
    registered, _ = RegisteredModel.objects.get_or_create(
        workspace=workspace, name=name, defaults={"node": model_node, "created_by": actor.user}
    )
    if ModelVersion.objects.filter(node=version_node).exists():
        raise Conflict(f"the lineage node {key} already belongs to a registered version", field="version")
    registered_version = ModelVersion.objects.create(
        registered_model=registered,
        version=version,
        node=version_node,
        artifact=stored,
        metrics=metrics or {},
        description=description,
        author=actor.user,
    )
    audit_append(
        workspace=workspace,
        actor=actor,
        action="model.register",
        target=f"model:{key}",
        payload={
            "artifact": str(stored.pk),
            "sha256": stored.sha256,
            "metrics": metrics or {},
            "lineage": counts,
        },
    )
    return registered_version


@transaction.atomic
def alias_set(*, workspace: Workspace, actor: Actor, name: str, alias: str, version: str) -> Alias:
    _check_name(alias, "alias")
    target = version_get(workspace, name, version)
    if ModelVersion.objects.filter(registered_model=target.registered_model, version=alias).exists():
        raise ApplicationError(
            f"{alias!r} is a version of {name}; an alias must not shadow one", field="alias"
        )
    record, _ = Alias.objects.update_or_create(
        registered_model=target.registered_model, name=alias, defaults={"version": target}
    )
    audit_append(
        workspace=workspace,
        actor=actor,
        action="model.alias",
        target=f"model:{name}@{alias}",
        payload={"version": target.version},
    )
    return record


# --- datasheets ---------------------------------------------------------------------------------------


def _subject(workspace: Workspace, kind: str, name: str, version: str) -> Node:
    if kind == DatasheetKind.MODEL_CARD:
        return version_get(workspace, name, version).node
    node = Node.objects.filter(
        workspace=workspace, kind=NodeKind.DATASET_VERSION, key=f"{name}@{version}"
    ).first()
    if node is None:
        raise NotFound(f"no dataset version {name}@{version} in this workspace")
    return node


@transaction.atomic
def datasheet_push(
    *, workspace: Workspace, actor: Actor, kind: str, name: str, version: str, content: Any
) -> Datasheet:
    """Store a new revision (a partial datasheet is fine; an invalid one is a 400 naming the field)."""
    subject = _subject(workspace, kind, name, version)
    datasheets.validate(kind, content)
    latest = Datasheet.objects.filter(subject=subject, kind=kind).aggregate(top=Max("revision"))["top"] or 0
    sheet = Datasheet.objects.create(
        workspace=workspace,
        kind=kind,
        subject=subject,
        revision=latest + 1,
        content=content,
        created_by=actor.user,
    )
    report = datasheets.completeness(kind, content)
    audit_append(
        workspace=workspace,
        actor=actor,
        action=f"{kind}.push",
        target=f"{kind}:{subject.key}",
        payload={"revision": sheet.revision, "completeness": report["overall"]},
    )
    return sheet


def evidence_for(sheet: Datasheet) -> dict[str, dict]:
    """Sections that evidence held by the service fills, each marked with its source."""
    evidence: dict[str, dict] = {}
    subject = sheet.subject
    if sheet.kind == DatasheetKind.MODEL_CARD:
        trained = Edge.objects.filter(src=subject, kind=EdgeKind.TRAINED_ON).select_related("dst")
        if trained:
            evidence["training_data"] = {"datasets": sorted(e.dst.key for e in trained), "source": "lineage"}
        assessed = Edge.objects.filter(dst=subject, kind=EdgeKind.ASSESSES).values_list("src_id", flat=True)
        evaluated = Edge.objects.filter(src_id__in=list(assessed), kind=EdgeKind.EVALUATED_ON).select_related(
            "dst"
        )
        if evaluated:
            evidence["evaluation_data"] = {
                "datasets": sorted({e.dst.key for e in evaluated}),
                "source": "lineage",
            }
        fairness = latest_fairness_assessment(model_node=subject)
        if fairness is not None:
            features = list(fairness.sensitive_features)
            key = "intersectional_results" if len(features) > 1 else "unitary_results"
            evidence["quantitative_analyses"] = {
                key: {
                    "sensitive_features": features,
                    "by_group": fairness.values_by_group(),
                    "disparities": fairness.disparity_values(),
                },
                "source": "fairness",
            }
    else:
        from privacy.services import latest_summary

        summary = latest_summary(subject)
        if summary is not None:
            statistics = {
                s["statistic"] + (f" of {s['column']}" if s["column"] else ""): s["value"]
                for s in summary["statistics"]
            }
            evidence["composition"] = {
                "count": statistics.get("count"),
                "instances": {k: v for k, v in statistics.items() if k != "count"},
                "source": "dp_summary",
            }
    return evidence


def datasheet_view(sheet: Datasheet) -> dict[str, Any]:
    evidence = evidence_for(sheet)
    return {
        "content": datasheets.merged(sheet.content, evidence),
        "completeness": datasheets.completeness(sheet.kind, sheet.content, evidence),
    }


# --- policies -----------------------------------------------------------------------------------------

POLICY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "stages", "rules"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "description": {"type": "string", "maxLength": 2000},
        "stages": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": [Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED]},
        },
        "rules": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "object"}},
    },
}


def policy_validate(document: Any) -> dict[str, Any]:
    """Check the whole document now, so that a bad rule is a 400 at upload, not a failure later."""
    errors: list[FieldError] = []
    validator = jsonschema.Draft202012Validator(POLICY_SCHEMA)
    for error in validator.iter_errors(document):
        path = ".".join(str(p) for p in error.absolute_path)
        errors.append(FieldError(path or "document", error.message))
    if errors:
        raise ApplicationError("the policy is not valid", errors=errors)
    seen: set[str] = set()
    for index, rule in enumerate(document["rules"]):
        kind = rule.get("type")
        check = checks.REGISTRY.get(kind)
        if check is None:
            errors.append(
                FieldError(
                    f"rules.{index}.type",
                    f"unknown check type {kind!r}; known: {', '.join(sorted(checks.REGISTRY))}",
                )
            )
            continue
        for error in jsonschema.Draft202012Validator(check.schema()).iter_errors(rule):
            path = ".".join(str(p) for p in error.absolute_path)
            if error.validator == "additionalProperties":
                extra = sorted(set(rule) - set(check.schema()["properties"]), key=str)
                for name in extra:
                    errors.append(FieldError(f"rules.{index}.{name}", f"unknown field for {kind}"))
                continue
            field = f"rules.{index}.{path}" if path else f"rules.{index}"
            errors.append(FieldError(field, error.message))
        rule_id = rule.get("id") or f"{kind}-{index + 1}"
        if rule_id in seen:
            errors.append(FieldError(f"rules.{index}.id", f"rule id {rule_id!r} is used twice"))
        seen.add(rule_id)
    if errors:
        raise ApplicationError("the policy is not valid", errors=errors)
    return document


@transaction.atomic
def policy_upload(*, workspace: Workspace, actor: Actor, document: Any) -> Policy:
    policy_validate(document)
    name = document["name"]
    latest = Policy.objects.filter(workspace=workspace, name=name).aggregate(top=Max("revision"))["top"] or 0
    Policy.objects.filter(workspace=workspace, name=name).update(active=False)
    policy = Policy.objects.create(
        workspace=workspace,
        name=name,
        revision=latest + 1,
        stages=document["stages"],
        document=document,
        created_by=actor.user,
    )
    audit_append(
        workspace=workspace,
        actor=actor,
        action="policy.upload",
        target=f"policy:{name}",
        payload={"revision": policy.revision, "stages": policy.stages, "rules": len(document["rules"])},
    )
    return policy


def policies_for(workspace: Workspace, stage: str) -> list[Policy]:
    return [p for p in Policy.objects.filter(workspace=workspace, active=True) if stage in p.stages]


# --- gate ---------------------------------------------------------------------------------------------


def evaluate(version: ModelVersion, stage: str, request: PromotionRequest | None = None) -> dict[str, Any]:
    """Every applicable rule, with pass/fail, reason and evidence (no writes)."""
    ctx = checks.Context(version, stage, request)
    workspace = version.registered_model.workspace
    rules = []
    policies = policies_for(workspace, stage)
    for policy in policies:
        for index, rule in enumerate(policy.document["rules"]):
            check = checks.REGISTRY[rule["type"]](rule)
            try:
                outcome = check.evaluate(ctx)
            except Exception as error:  # a broken check fails closed, and says so
                outcome = checks.Outcome(False, f"the check could not run: {type(error).__name__}: {error}")
            rules.append(
                {
                    "policy": policy.name,
                    "policy_revision": policy.revision,
                    "rule": rule.get("id") or f"{rule['type']}-{index + 1}",
                    "type": rule["type"],
                    "passed": outcome.passed,
                    "reason": outcome.reason,
                    "evidence": outcome.evidence,
                }
            )
    if not policies:  # fail closed: a gate with nothing to check says no, and why
        rules.append(
            {
                "policy": "gate",
                "policy_revision": None,
                "rule": "policy-coverage",
                "type": "policy_coverage",
                "passed": False,
                "reason": f"no active policy covers the stage {str(stage)!r}: upload one that lists it",
                "evidence": {},
            }
        )
    return {
        "passed": all(r["passed"] for r in rules),
        "rules": rules,
        "policies": [{"name": p.name, "revision": p.revision} for p in policies],
    }


_EVALUATIONS: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_EVALUATIONS_LOCK = threading.Lock()
EVALUATION_CACHE_SIZE = 1024


def evaluate_at(version: ModelVersion, stage: str, request_id: Any, evidence_seq: int) -> dict:
    """`evaluate`, remembered per process for the workspace's evidence sequence: every change a rule
    can read writes an audit event, which moves Workspace.evidence_seq, so a result computed at the
    same sequence (same version, stage and request) is the same result. The request (by id) is
    only read when the result is not remembered."""
    key = (version.registered_model.workspace_id, version.pk, stage, request_id, evidence_seq)
    with _EVALUATIONS_LOCK:
        found = _EVALUATIONS.get(key)
        if found is not None:
            _EVALUATIONS.move_to_end(key)
            return found
    request = PromotionRequest.objects.get(pk=request_id) if request_id is not None else None
    result = evaluate(version, stage, request)
    with _EVALUATIONS_LOCK:
        _EVALUATIONS[key] = result
        while len(_EVALUATIONS) > EVALUATION_CACHE_SIZE:
            _EVALUATIONS.popitem(last=False)
    return result


def _decide(
    version: ModelVersion, stage: str, actor: Actor, evidence_seq: int, result: dict[str, Any]
) -> GateDecision:
    """Sign and store the decision for an evaluation made at `evidence_seq` (inside the caller's
    transaction)."""
    workspace = version.registered_model.workspace
    decision_id = uuid.uuid4()
    statement = {
        "decision": str(decision_id),
        "workspace": workspace.slug,
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
    from core.canonical_json import normalise

    statement = normalise(statement)
    return GateDecision.objects.create(
        id=decision_id,
        workspace=workspace,
        model_version=version,
        stage=stage,
        passed=result["passed"],
        statement=statement,
        signature=signing.sign(statement),
        key_id=statement["key_id"],
        requested_by=actor.user,
    )


def _gate_request_id(version: ModelVersion, stage: str) -> Any:
    """The request whose reviews the gate counts: the open one for (version, stage), or, for a version
    already in `stage`, the completed request that moved it there (a deploy after the approval
    passes on those approvals; a version moved out of the stage needs a new request)."""
    # At most one request is open per (version, stage); no ordering to compile or sort.
    requests = PromotionRequest.objects.filter(model_version=version, stage=stage)
    open_ids = list(requests.filter(state=RequestState.OPEN).order_by().values_list("pk", flat=True)[:1])
    if open_ids:
        return open_ids[0]
    if version.stage != stage:
        return None
    return (
        requests.filter(state=RequestState.COMPLETED)
        .order_by("-closed_at")
        .values_list("pk", flat=True)
        .first()
    )


@transaction.atomic
def gate_check(*, workspace: Workspace, actor: Actor, version: ModelVersion, stage: str) -> GateDecision:
    """Evaluate the gate for `stage`, sign, store and audit the decision. The workspace's audit head
    is locked first and the evidence sequence read from it, so the decision is evaluated at exactly
    the evidence its audit event follows (no change can commit in between: every change appends to
    the same chain). The evaluation itself is remembered per evidence sequence."""
    head = audit_head(workspace)
    result = evaluate_at(version, stage, _gate_request_id(version, stage), head.evidence_seq)
    decision = _decide(version, stage, actor, head.evidence_seq, result)
    audit_append(
        workspace=workspace,
        actor=actor,
        action="gate.check",
        target=f"model:{version}",
        payload={
            "decision": str(decision.pk),
            "stage": stage,
            "passed": decision.passed,
            "failed": [r["rule"] for r in decision.statement["rules"] if not r["passed"]],
        },
        locked=head,
    )
    return decision


def decision_document(decision: GateDecision) -> dict[str, Any]:
    """The signed decision as it is served and saved: verify `signature` over `statement`."""
    return {
        "statement": decision.statement,
        "signature": decision.signature,
        "key_id": decision.key_id,
        "algorithm": "Ed25519",
    }


# --- promotion ----------------------------------------------------------------------------------------


def _role(workspace: Workspace, user) -> str:
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


@transaction.atomic
def promotion_request(
    *, workspace: Workspace, actor: Actor, version: ModelVersion, stage: str, comment: str = ""
) -> PromotionRequest:
    if stage not in TRANSITIONS[Stage(version.stage)]:
        raise ApplicationError(f"{version} is {version.stage}; it cannot move to {stage}", field="stage")
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


def review(
    *, workspace: Workspace, actor: Actor, request_id: Any, approve: bool, comment: str
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
    the caller's transaction, with the request and the version locked)."""
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
        # One production version per model: the one it replaces is archived.
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
    version.stage, version.stage_changed_at = request.stage, now
    version.save(update_fields=["stage", "stage_changed_at"])
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
