"""Sign a checkpoint of the audit chain's head now, and print or save it to publish (see
docs/operations.md, "Audit checkpoints")."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.audit_checkpoints import audit_checkpoint_create, checkpoint_document
from core.errors import ApplicationError
from core.models import Workspace


class Command(BaseCommand):
    help = "Sign a checkpoint of a workspace's audit chain (its head's seq and hash) and print it as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="slug of the workspace")
        parser.add_argument("--output", help="write the checkpoint to this file instead of printing it")

    def handle(self, *args, workspace, output=None, **options):
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"no workspace called {workspace!r}")
        try:
            checkpoint, created = audit_checkpoint_create(workspace=found)
        except ApplicationError as error:
            raise CommandError(str(error)) from error
        text = json.dumps(checkpoint_document(checkpoint), indent=2)
        if output:
            Path(output).write_text(text + "\n")
            what = "signed" if created else "already certified"
            self.stdout.write(f"{found.slug}: head {checkpoint.seq} {what}; saved to {output}")
        else:
            self.stdout.write(text)
