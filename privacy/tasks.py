"""Celery tasks of the privacy app."""

from celery import shared_task
from django.db import DatabaseError

from privacy import services


@shared_task(
    name="privacy.compute_release",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    max_retries=10,
)
def compute_release(release_id: str) -> None:
    """Compute a large release whose budget is already reserved (idempotent: done releases are skipped)."""
    services.release_compute(release_id)
