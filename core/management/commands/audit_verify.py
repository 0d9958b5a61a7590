"""Verify the audit chains: prints "intact, N events" or the first broken link; exits 1 if broken."""

from django.core.management.base import BaseCommand, CommandError

from core.audit import audit_verify
from core.models import Workspace


class Command(BaseCommand):
    help = "Verify the hash chain of the audit log of every workspace (or one, with --workspace)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="slug of the one workspace to verify")

    def handle(self, *args, workspace=None, **options):
        workspaces = Workspace.objects.order_by("slug")
        if workspace:
            workspaces = workspaces.filter(slug=workspace)
            if not workspaces.exists():
                raise CommandError(f"no workspace called {workspace!r}")
        broken = 0
        for ws in workspaces:
            report = audit_verify(workspace=ws)
            self.stdout.write(f"{ws.slug}: {report.summary()}")
            broken += not report.intact
        if broken:
            raise CommandError(f"{broken} audit chain(s) broken")
