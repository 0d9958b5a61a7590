"""Signed checkpoints of the audit chains.

The hash chain shows that no event was changed, removed or inserted *relative to the head the
database holds*; someone who can rewrite the whole table (a database administrator) can rebuild a
consistent chain. A checkpoint closes that gap: the service signs the head (workspace, seq, hash,
time) with its Ed25519 key, periodically and on demand, and anyone who keeps a copy can later check
that the chain served then still passes through that hash at that seq. Checkpoints are signed
statements kept beside the chain, not events in it (an event per checkpoint would move the head it
certifies).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core import signing
from core.audit import AuditChainBroken, audit_verify
from core.errors import ApplicationError
from core.models import AuditCheckpoint, AuditEvent, Workspace

STATEMENT_TYPE = "mlgov.audit-checkpoint/v1"


def checkpoint_statement(checkpoint: AuditCheckpoint, workspace: Workspace) -> dict[str, Any]:
    """What a checkpoint's signature covers."""
    return {
        "type": STATEMENT_TYPE,
        "workspace": workspace.slug,
        "workspace_id": str(workspace.pk),
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "time": checkpoint.created_at.astimezone(UTC).isoformat(timespec="seconds"),
        "key_id": checkpoint.key_id,
    }


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The file an auditor keeps: the signed statement, its signature, and how to check it."""
    return {
        "id": str(checkpoint.pk),
        "statement": checkpoint_statement(checkpoint, checkpoint.workspace),
        "signature": checkpoint.signature,
        "algorithm": "Ed25519",
        "key_id": checkpoint.key_id,
    }


def audit_checkpoint_create(*, workspace: Workspace) -> tuple[AuditCheckpoint, bool]:
    """Sign the workspace's current head, after verifying the chain up to it. Returns (checkpoint,
    created): a head already checkpointed gives the existing checkpoint. A broken chain is never
    certified (409 naming the broken link); an empty one has nothing to certify (400)."""
    head = Workspace.objects.only("slug", "audit_head_seq", "audit_head_hash").get(pk=workspace.pk)
    if head.audit_head_seq == 0:
        raise ApplicationError("the audit chain is empty: there is nothing to certify yet")
    existing = AuditCheckpoint.objects.filter(workspace=head, seq=head.audit_head_seq).first()
    if existing is not None:
        return existing, False
    report = audit_verify(workspace=head)
    if not report.intact:
        raise AuditChainBroken(f"the audit chain is not intact ({report.summary()}); it is not certified")
    # The chain verified up to a head at or after the one read above; the event at the seq read
    # above must still carry the hash read with it.
    on_chain = AuditEvent.objects.filter(workspace=head, seq=head.audit_head_seq).values_list(
        "hash", flat=True
    )
    if on_chain.first() != head.audit_head_hash:
        raise AuditChainBroken(f"event {head.audit_head_seq} no longer carries the head's hash")
    checkpoint = AuditCheckpoint(
        workspace=head,
        seq=head.audit_head_seq,
        hash=head.audit_head_hash,
        created_at=timezone.now(),
        key_id=signing.key_id(),
    )
    checkpoint.signature = signing.sign(checkpoint_statement(checkpoint, head))
    try:
        with transaction.atomic():
            checkpoint.save(force_insert=True)
    except IntegrityError:  # another request certified the same head first
        return AuditCheckpoint.objects.get(workspace=head, seq=head.audit_head_seq), False
    return checkpoint, True


def audit_checkpoints_due() -> list[Workspace]:
    """Workspaces whose chain has moved since their latest checkpoint (or has none)."""
    due = []
    for workspace in Workspace.objects.filter(audit_head_seq__gt=0).only("slug", "audit_head_seq"):
        latest = AuditCheckpoint.objects.filter(workspace=workspace).values_list("seq", flat=True).first()
        if latest is None or latest < workspace.audit_head_seq:
            due.append(workspace)
    return due


def audit_checkpoint_verify(document: dict[str, Any], *, workspace: Workspace) -> list[str]:
    """Everything that keeps a checkpoint file from holding for this workspace's chain as the
    database has it now (empty when it holds): its signature with the service's key, that it is about
    this workspace, that the chain is intact, and that the chain still passes through its hash."""
    statement = document.get("statement")
    if not isinstance(statement, dict) or statement.get("type") != STATEMENT_TYPE:
        return ["the file is not an audit checkpoint"]
    public_key = signing.public_key_document()["public_key"]
    if not signing.verify(statement, str(document.get("signature", "")), public_key):
        return ["the checkpoint's signature does not match its statement and this service's key"]
    if statement.get("workspace_id") != str(workspace.pk):
        return [f"the checkpoint is for workspace {statement.get('workspace')!r}, not {workspace.slug!r}"]
    problems = []
    report = audit_verify(workspace=workspace)
    if not report.intact:
        problems.append(f"the chain is broken: {report.summary()}")
    seq = statement.get("seq")
    if not isinstance(seq, int) or seq < 1:
        return [*problems, "the checkpoint names no event"]
    found = AuditEvent.objects.filter(workspace=workspace, seq=seq).values_list("hash", flat=True).first()
    if found is None:
        problems.append(f"the chain has no event {seq}: events certified by the checkpoint were removed")
    elif found != statement.get("hash"):
        problems.append(
            f"event {seq} has another hash than the checkpoint certified: the chain was rewritten"
        )
    return problems
