"""Celery tasks of the core app: thin wrappers that take ids and call a service."""

from celery import shared_task

from core.audit import audit_verify
from core.models import Workspace


@shared_task(
    name="core.audit_verify", acks_late=True, ignore_result=False, soft_time_limit=600, time_limit=660
)
def audit_verify_task(workspace_id: str) -> dict:
    """Verify one workspace's audit chain in a worker (read-only, so naturally idempotent)."""
    workspace = Workspace.objects.get(pk=workspace_id)
    return audit_verify(workspace=workspace).as_dict()
