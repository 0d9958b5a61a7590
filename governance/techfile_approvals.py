"""Approving a version's technical file, with separation of duties: a compliance reviewer or an admin
approves; not the version's author, nor anyone who wrote a revision of its Annex IV sections. The
approval is signed by the service for the evidence the file cites at that moment
(techfile.approved_digest), audited, and carried by every later file of the version, marked current
while that evidence is unchanged."""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from core import signing
from core.actors import Actor
from core.audit import audit_append
from core.canonical_json import normalise
from core.errors import Forbidden
from core.models import Membership, Workspace
from core.roles import Role
from governance import techfile
from governance.models import Datasheet, DatasheetKind, ModelVersion, TechfileApproval

APPROVING_ROLES = (Role.COMPLIANCE_REVIEWER, Role.ADMIN)


def _check_duties(workspace: Workspace, actor: Actor, version: ModelVersion) -> str:
    """The approver's role, or Forbidden naming why they may not approve."""
    if actor.user is None:
        raise Forbidden("a technical file is approved by a person")
    membership = Membership.objects.filter(workspace=workspace, user=actor.user).first()
    if membership is None or membership.role not in APPROVING_ROLES:
        raise Forbidden("only a compliance reviewer or an admin approves a technical file")
    writers = set(
        Datasheet.objects.filter(subject_id=version.node_id, kind=DatasheetKind.ANNEX_IV).values_list(
            "created_by_id", flat=True
        )
    )
    if actor.user.pk == version.author_id or actor.user.pk in writers:
        raise Forbidden(
            "the author of a model version, or of its technical file's written sections, cannot approve it"
        )
    return membership.role


@transaction.atomic
def techfile_approve(
    *, workspace: Workspace, actor: Actor, version: ModelVersion, comment: str = ""
) -> TechfileApproval:
    """Approve the technical file as it is now; asking again for the same evidence returns the same
    approval."""
    role = _check_duties(workspace, actor, version)
    user = actor.user
    assert user is not None  # _check_duties refused an approval by no one  # noqa: S101
    cited = techfile.bundle(version)["techfile"]["evidence"]
    evidence_digest = techfile.approved_digest(cited)
    existing = TechfileApproval.objects.filter(
        model_version=version, approved_by=user, evidence_digest=evidence_digest
    ).first()
    if existing is not None:
        return existing
    approval_id, now = uuid.uuid4(), timezone.now()
    statement = normalise(
        {
            "approval": str(approval_id),
            "workspace": workspace.slug,
            "model": version.registered_model.name,
            "version": version.version,
            "evidence_digest": evidence_digest,
            "approved_by": user.get_username(),
            "role": role,
            "comment": comment,
            "approved_at": now.isoformat(),
            "key_id": signing.key_id(),
            "algorithm": "Ed25519",
        }
    )
    approval = TechfileApproval.objects.create(
        id=approval_id,
        workspace=workspace,
        model_version=version,
        evidence_digest=evidence_digest,
        approved_by=user,
        role=role,
        comment=comment,
        approved_at=now,
        statement=statement,
        signature=signing.sign(statement),
    )
    audit_append(
        workspace=workspace,
        actor=actor,
        action="techfile.approve",
        target=f"model:{version}",
        payload={"approval": str(approval_id), "evidence_digest": evidence_digest, "role": role},
    )
    return approval
