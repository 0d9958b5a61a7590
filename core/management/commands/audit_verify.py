"""Verify the audit chains: prints "intact, N events" or the first broken link; exits 1 if broken.
With --checkpoint FILE, also checks that the chain still extends that signed checkpoint."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.audit import audit_verify
from core.audit_checkpoints import audit_checkpoint_verify
from core.models import Workspace


class Command(BaseCommand):
    help = "Verify the hash chain of the audit log of every workspace (or one, with --workspace)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="slug of the one workspace to verify")
        parser.add_argument(
            "--checkpoint",
            help="a checkpoint file (manage.py audit_checkpoint, GET /api/v1/audit/checkpoints): the chain "
            "must still pass through its hash",
        )

    def handle(self, *args, workspace=None, checkpoint=None, **options):
        if checkpoint:
            return self._against_checkpoint(Path(checkpoint), workspace)
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

    def _against_checkpoint(self, path: Path, slug: str | None) -> None:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise CommandError(f"cannot read {path}: {error}") from error
        statement = document.get("statement") if isinstance(document, dict) else None
        slug = slug or (statement or {}).get("workspace")
        found = Workspace.objects.filter(slug=slug).first() if isinstance(slug, str) else None
        if found is None:
            raise CommandError(f"no workspace called {slug!r}")
        problems = audit_checkpoint_verify(document, workspace=found)
        if problems:
            for problem in problems:
                self.stdout.write(f"{found.slug}: {problem}")
            raise CommandError("the chain does not extend the checkpoint")
        self.stdout.write(
            f"{found.slug}: intact, and extends the checkpoint at event {statement['seq']}"  # type: ignore[index]
        )
