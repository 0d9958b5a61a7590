"""An export of a workspace's audit log for a period, verifiable offline like a report: every event in
the period with the document its hash covers, the event just before the period (so the first
event's link into the chain is checked too) and the chain's head when exported, signed together with
the service's key. `mlgov verify-audit-export FILE --public-key KEY` recomputes every hash, checks each
link and the signature, and names what fails. For record-keeping (AI Act Articles 12 and 19: logs kept
and produced on request) and for auditors who file the log of a period with their findings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from core import signing
from core.audit import event_document
from core.canonical_json import normalise
from core.errors import ApplicationError
from core.models import AuditEvent, Workspace

EXPORT_KIND = "mlgov.audit-export"


def _event(event: AuditEvent) -> dict[str, Any]:
    return {"document": event_document(event), "prev_hash": event.prev_hash, "hash": event.hash}


def audit_export(*, workspace: Workspace, since: datetime, until: datetime) -> dict[str, Any]:
    """The signed export of the events logged from `since` to `until` (inclusive), in chain order.
    More than AUDIT_EXPORT_MAX_EVENTS events is a 400 that says so (export shorter periods)."""
    if since > until:
        raise ApplicationError("until must not be before since", field="until")
    events = AuditEvent.objects.filter(
        workspace=workspace, created_at__gte=since, created_at__lte=until
    ).order_by("seq")
    limit = settings.AUDIT_EXPORT_MAX_EVENTS
    chosen = list(events[: limit + 1])
    if len(chosen) > limit:
        raise ApplicationError(
            f"the period holds more than {limit} events; export it in shorter periods", field="until"
        )
    before = None
    if chosen:
        anchor = AuditEvent.objects.filter(workspace=workspace, seq=chosen[0].seq - 1).first()
        before = {"seq": anchor.seq, "hash": anchor.hash} if anchor is not None else None
    export = normalise(
        {
            "kind": EXPORT_KIND,
            "format": 1,
            "workspace": workspace.slug,
            "workspace_id": str(workspace.pk),
            "since": since.isoformat(),
            "until": until.isoformat(),
            "exported_at": timezone.now().isoformat(),
            "head": {"seq": workspace.audit_head_seq, "hash": workspace.audit_head_hash},
            "before": before,
            "count": len(chosen),
            "events": [_event(e) for e in chosen],
            "key_id": signing.key_id(),
        }
    )
    return {
        "export": export,
        "signature": signing.sign(export),
        "algorithm": "Ed25519",
        "key_id": export["key_id"],
    }
