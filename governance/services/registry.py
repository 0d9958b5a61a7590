"""Registry writes: model versions (with their lineage), aliases, datasheets and policies, each in one
transaction with its audit event."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max

from core.actors import Actor
from core.audit import audit_append, refusals_audited
from core.errors import ApplicationError, Conflict, NotFound
from core.models import Artifact, Workspace
from explain.loading import ModelLoadError, model_artifact_check
from governance import datasheets
from governance.models import Alias, Datasheet, ModelVersion, Policy, RegisteredModel, RiskTier
from governance.names import name_check
from governance.policies import policy_validate
from governance.selectors import datasheet_subject, datasheet_view, version_get
from lineage.kinds import EdgeKind, NodeKind
from lineage.models import Node
from lineage.services import lineage_record
from lineage.specs import Batch, NodeSpec


def _check_model_artifact(workspace: Workspace, artifact_id: str) -> Artifact:
    """The model file, checked without deserialising it: the web process never loads a model."""
    artifact = Artifact.objects.filter(workspace=workspace, pk=artifact_id).first()
    if artifact is None:
        raise ApplicationError(f"no artifact {artifact_id} in this workspace", field="artifact")
    try:
        model_artifact_check(artifact, workspace)
    except ModelLoadError as error:
        raise ApplicationError(str(error), field="artifact") from error
    return artifact


def _lineage_batch(
    key: str,
    name: str,
    *,
    artifact: Artifact,
    metrics: dict[str, Any],
    run: dict[str, Any] | None,
    datasets: list[str],
    commit: dict[str, Any] | None,
    environment: dict[str, Any] | None,
) -> Batch:
    """ModelVersion VERSION_OF Model, and when a run is given: the run produced it from the dataset
    versions (TRAINED_ON), from the commit, in the environment."""
    batch = Batch()
    model_ref = batch.node(NodeSpec(NodeKind.MODEL, name))
    version_ref = batch.node(
        NodeSpec(NodeKind.MODEL_VERSION, key, properties={"metrics": metrics}, artifact=str(artifact.pk))
    )
    batch.edge(EdgeKind.VERSION_OF, version_ref, model_ref)
    if not run:
        for dataset in datasets:
            batch.edge(
                EdgeKind.TRAINED_ON, version_ref, batch.node(NodeSpec(NodeKind.DATASET_VERSION, dataset))
            )
        return batch
    run_ref = batch.node(NodeSpec(NodeKind.RUN, run["key"], properties=run.get("properties") or {}))
    batch.edge(EdgeKind.PRODUCED, run_ref, version_ref)
    if run.get("job"):
        batch.edge(EdgeKind.INSTANCE_OF, run_ref, batch.node(NodeSpec(NodeKind.JOB, run["job"])))
    for dataset in datasets:
        dataset_ref = batch.node(NodeSpec(NodeKind.DATASET_VERSION, dataset))
        batch.edge(EdgeKind.USED, run_ref, dataset_ref)
        batch.edge(EdgeKind.TRAINED_ON, version_ref, dataset_ref)
    if commit:
        ref = batch.node(NodeSpec(NodeKind.COMMIT, commit["key"], properties=commit.get("properties") or {}))
        batch.edge(EdgeKind.BUILT_FROM, run_ref, ref)
    if environment:
        ref = batch.node(
            NodeSpec(NodeKind.ENVIRONMENT, environment["key"], properties=environment.get("properties") or {})
        )
        batch.edge(EdgeKind.RAN_IN, run_ref, ref)
    return batch


@refusals_audited("model.register", lambda kw: f"model:{kw['name']}@{kw['version']}")
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
    name_check(name, "name")
    name_check(version, "version")
    stored = _check_model_artifact(workspace, artifact)
    if ModelVersion.objects.filter(
        registered_model__workspace=workspace, registered_model__name=name, version=version
    ).exists():
        raise Conflict(f"{name}@{version} is already registered", field="version")
    key = f"{name}@{version}"
    batch = _lineage_batch(
        key,
        name,
        artifact=stored,
        metrics=metrics or {},
        run=run,
        datasets=datasets or [],
        commit=commit,
        environment=environment,
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
    """Point the alias `name@alias` at `name@version` (an alias must not shadow a version)."""
    name_check(alias, "alias")
    target = version_get(workspace=workspace, name=name, version=version)
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


@transaction.atomic
def datasheet_push(
    *, workspace: Workspace, actor: Actor, kind: str, name: str, version: str, content: Any
) -> Datasheet:
    """Store a new revision (a partial datasheet is fine; an invalid one is a 400 naming the field)."""
    subject = datasheet_subject(workspace=workspace, kind=kind, name=name, version=version)
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
    # The completeness people see (page, API, CLI): with the sections evidence fills.
    report = datasheet_view(sheet=sheet)["completeness"]
    audit_append(
        workspace=workspace,
        actor=actor,
        action=f"{kind}.push",
        target=f"{kind}:{subject.key}",
        payload={"revision": sheet.revision, "completeness": report["overall"]},
    )
    return sheet


@transaction.atomic
def policy_upload(*, workspace: Workspace, actor: Actor, document: Any) -> Policy:
    """Validate the whole document and store it as the active revision of its name."""
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


@transaction.atomic
def model_update(
    *,
    workspace: Workspace,
    actor: Actor,
    name: str,
    tags: list[str] | None = None,
    risk_tier: str | None = None,
    description: str | None = None,
    annex_iii_area: str | None = None,
    intended_purpose: str | None = None,
    owner: str | None = None,
) -> RegisteredModel:
    """Change what describes a registered model: its tags and risk classification (tier, and for a
    high-risk model its Annex III area; the tags and tier select the policies that govern it), its
    intended purpose, owner and description. One `model.update` audit event with the changes, none
    when nothing changes. An Annex III area belongs to high-risk models only: setting one on another
    tier is refused, and moving a model out of the high tier clears its area (recorded as a change)."""
    model = RegisteredModel.objects.select_for_update().filter(workspace=workspace, name=name).first()
    if model is None:
        raise NotFound(f"no registered model {name!r} in this workspace")
    tier = risk_tier if risk_tier is not None else model.risk_tier
    if annex_iii_area and tier != RiskTier.HIGH:
        raise ApplicationError(
            f"an Annex III area is for high-risk models; {model.name!r} would be {tier or 'without a tier'}",
            field="annex_iii_area",
        )
    if tier != RiskTier.HIGH and annex_iii_area is None and model.annex_iii_area:
        annex_iii_area = ""
    wanted = {
        "tags": sorted(set(tags)) if tags is not None else None,
        "risk_tier": risk_tier,
        "annex_iii_area": annex_iii_area,
        "intended_purpose": intended_purpose,
        "owner": owner,
        "description": description,
    }
    changes = {
        field: {"from": getattr(model, field), "to": value}
        for field, value in wanted.items()
        if value is not None and getattr(model, field) != value
    }
    if not changes:
        return model
    for field, change in changes.items():
        setattr(model, field, change["to"])
    model.save(update_fields=list(changes))
    audit_append(
        workspace=workspace,
        actor=actor,
        action="model.update",
        target=f"model:{model.name}",
        payload={"changes": changes},
    )
    return model
