"""Celery tasks of the lineage app."""

from celery import shared_task

from lineage.projection import GraphUnavailable, outbox_drain


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
    """Drain the lineage outbox into the graph database (idempotent: MERGE by relational id)."""
    return outbox_drain()
