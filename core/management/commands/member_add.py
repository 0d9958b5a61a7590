"""Add a member to a workspace from the server (operators; no invitation): for service accounts such
as a CI pipeline's, which never sign in to accept one."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.actors import SYSTEM
from core.errors import ApplicationError
from core.models import Workspace
from core.roles import Role
from core.workspaces import membership_add


class Command(BaseCommand):
    help = "Make a user a member of a workspace with a role, at once (the API invites instead)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--user", required=True)
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument(
            "--create",
            action="store_true",
            help="create the user if missing, with no password (a service account: it uses API tokens)",
        )

    def handle(self, *args, workspace, user, role, create, **options):
        ws = Workspace.objects.filter(slug=workspace).first()
        if ws is None:
            raise CommandError(f"no workspace {workspace!r}")
        users = get_user_model()
        if not users.objects.filter(username=user).exists():
            if not create:
                raise CommandError(f"no user {user!r} (add --create to make a service account)")
            account = users(username=user)
            account.set_unusable_password()
            account.save()
            self.stdout.write(f"created {user} (no password: it signs in with API tokens only)")
        try:
            membership_add(workspace=ws, actor=SYSTEM, username=user, role=role)
        except ApplicationError as error:
            raise CommandError(error.detail) from None
        self.stdout.write(f"{user} is a member of {workspace} as {role}")
