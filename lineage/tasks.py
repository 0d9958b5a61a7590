"""Celery tasks of the lineage app."""

import logging

from celery import shared_task

from lineage.projection import GraphUnavailable, outbox_drain
from lineage.services import projection_enabled

logger = logging.getLogger(__name__)


@shared_task(
    name="lineage.project_outbox",
    acks_late=True,
    autoretry_for=(GraphUnavailable,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=None,  # the outbox keeps everything; keep trying until the graph database is back
    soft_time_limit=600,
    time_limit=660,
)
def project_outbox() -> int:
    """Drain the lineage outbox into the graph database (idempotent: MERGE by relational id).
    Queued after each ingestion commit; retried with backoff while the graph database is down."""
    if not projection_enabled():
        return 0
    return outbox_drain()


@shared_task(name="lineage.project_outbox_scheduled", acks_late=True, soft_time_limit=600, time_limit=660)
def project_outbox_scheduled() -> int:
    """The periodic drain (Celery beat, CELERY_BEAT_SCHEDULE): a safety net for entries whose queued
    drain was lost (broker down at commit time, a worker killed mid-task). It does not retry on its
    own, so a long outage does not pile up retrying copies; the next tick tries again.
    Returns how many entries were applied, or -1 when the graph database is unreachable."""
    if not projection_enabled():
        return 0
    try:
        return outbox_drain()
    except GraphUnavailable:
        logger.warning("graph database unreachable; the outbox keeps its entries until the next tick")
        return -1
