"""Let a workspace register pickle and joblib models, or stop it: the operator's decision, which no
API can make. The server must allow them too (MODELS_ALLOW_PICKLE); workers then run them only in a
sandboxed child process (docs/operations.md, "Pickle models")."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.actors import SYSTEM
from core.models import Workspace
from core.workspaces import workspace_allow_pickle


class Command(BaseCommand):
    help = "Allow pickle and joblib models in a workspace (with --off, refuse them again). Audited."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="the workspace's slug")
        parser.add_argument("--off", action="store_true", help="refuse pickle models in the workspace again")

    def handle(self, *args, workspace, off, **options):
        ws = Workspace.objects.filter(slug=workspace).first()
        if ws is None:
            raise CommandError(f"no workspace {workspace!r}")
        changed = workspace_allow_pickle(workspace=ws, actor=SYSTEM, allowed=not off)
        state = "refuses" if off else "accepts"
        self.stdout.write(f"{workspace} {'now ' if changed else 'already '}{state} pickle models")
        if not off and not settings.MODELS_ALLOW_PICKLE:
            self.stderr.write(
                "note: MODELS_ALLOW_PICKLE is off on this server: pickle models stay refused until it is set"
            )
