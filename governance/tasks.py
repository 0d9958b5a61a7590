"""Celery tasks of the governance app."""

from celery import shared_task
from django.db import DatabaseError

from governance import reports


@shared_task(
    name="governance.render_report",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=2,
    max_retries=5,
)
def render_report(report_id: str) -> None:
    reports.report_render(report_id)
