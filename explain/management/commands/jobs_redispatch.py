"""Send unfinished explanation and fairness jobs to the workers again."""

import uuid
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.work import FINISHED
from explain import services
from explain.models import Job


class Command(BaseCommand):
    help = (
        "Send the start message of unfinished jobs again, after a broker lost its messages (a Redis "
        "restarted without persistence, a queue purged). Safe to repeat: work already done is kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "job_ids", nargs="*", metavar="JOB_ID", help="these jobs (default: every unfinished job)"
        )
        parser.add_argument(
            "--idle-minutes",
            type=float,
            default=0,
            help="only jobs without progress for this long (not started, or no chunk done, since)",
        )
        parser.add_argument("--workspace", help="only jobs of this workspace (slug)")

    def handle(self, *args, job_ids, idle_minutes, workspace, **options):
        jobs = Job.objects.exclude(state__in=FINISHED).select_related("workspace").order_by("created_at")
        if job_ids:
            jobs = jobs.filter(pk__in=self._named_jobs(job_ids))
        if workspace:
            jobs = jobs.filter(workspace__slug=workspace)
        if idle_minutes:
            cutoff = timezone.now() - timedelta(minutes=idle_minutes)
            jobs = jobs.annotate(last_sign=Coalesce("heartbeat_at", "created_at")).filter(
                last_sign__lt=cutoff
            )
        chosen = list(jobs)
        sent = services.jobs_redispatch(chosen)
        for job in sent:
            self.stdout.write(f"sent {job.id} ({job.kind}, {job.state}, workspace {job.workspace.slug})")
        if len(sent) < len(chosen):
            raise CommandError(
                f"{len(chosen) - len(sent)} of {len(chosen)} jobs could not be sent: is the broker up?"
            )
        self.stdout.write(f"{len(sent)} jobs sent")

    def _named_jobs(self, job_ids: list[str]) -> list[uuid.UUID]:
        """The ids given, each of an existing job; those already finished are named as skipped."""
        ids = [_job_id(text) for text in job_ids]
        states = dict(Job.objects.filter(pk__in=ids).values_list("pk", "state"))
        missing = set(ids) - set(states)
        if missing:
            raise CommandError(f"no such job: {', '.join(sorted(map(str, missing)))}")
        for job_id, state in states.items():
            if state in FINISHED:
                self.stdout.write(f"skipped {job_id}: already {state}")
        return ids


def _job_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a job id") from None
