"""Celery tasks of the core app: thin wrappers that take ids and call a service."""

import logging

from celery import shared_task

from core.audit import audit_verify
from core.audit_checkpoints import audit_checkpoint_create, audit_checkpoints_due
from core.errors import ApplicationError
from core.models import Workspace
from core.work import work_sweep

logger = logging.getLogger(__name__)


@shared_task(
    name="core.audit_verify", acks_late=True, ignore_result=False, soft_time_limit=600, time_limit=660
)
def audit_verify_task(workspace_id: str) -> dict:
    """Verify one workspace's audit chain in a worker (read-only, so naturally idempotent)."""
    workspace = Workspace.objects.get(pk=workspace_id)
    return audit_verify(workspace=workspace).as_dict()


@shared_task(name="core.audit_checkpoints", acks_late=True, soft_time_limit=1800, time_limit=1860)
def audit_checkpoints_task() -> int:
    """Sign a checkpoint of every chain that moved since its last one (Celery beat, every
    AUDIT_CHECKPOINT_INTERVAL seconds). A broken chain is logged and left uncertified."""
    signed = 0
    for workspace in audit_checkpoints_due():
        try:
            _, created = audit_checkpoint_create(workspace=workspace)
        except ApplicationError as error:
            logger.error("audit checkpoint of %s refused: %s", workspace.slug, error)
            continue
        signed += created
    return signed


@shared_task(name="core.work_sweep", acks_late=True, soft_time_limit=300, time_limit=360)
def work_sweep_task() -> dict[str, int]:
    """Periodic (Celery beat, every WORK_SWEEP_INTERVAL seconds): send again work that never reached a
    worker and run again work whose worker died (core/work.py)."""
    return work_sweep()
