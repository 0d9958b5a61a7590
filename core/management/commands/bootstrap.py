"""Create the first admin user and workspace (idempotent), for the one-command local setup."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from core.actors import SYSTEM
from core.models import Membership, Workspace
from core.roles import Role
from core.workspaces import workspace_create


class Command(BaseCommand):
    help = "Create an admin user and a workspace if they do not exist, and print how to sign in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("MLGOV_ADMIN_USERNAME", "admin"))
        parser.add_argument(
            "--workspace",
            default=os.environ.get("MLGOV_WORKSPACE", "demo"),
            help="the admin's first workspace; empty for none (signed-in users create their own)",
        )
        parser.add_argument(
            "--reset-password", action="store_true", help="give an existing admin a new password"
        )

    @transaction.atomic
    def handle(self, *args, username, workspace, reset_password, **options):
        users = get_user_model()
        password = os.environ.get("MLGOV_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user = users.objects.filter(username=username).first()
        if user is None:
            user = users.objects.create_superuser(username=username, email="", password=password)
            shown = password
        elif reset_password:
            user.set_password(password)
            user.save(update_fields=["password"])
            shown = password
        else:
            shown = "(unchanged; run `manage.py bootstrap --reset-password` for a new one)"

        if workspace:
            ws = Workspace.objects.filter(slug=workspace).first()
            if ws is None:
                ws = workspace_create(slug=workspace, name=workspace.title(), actor=SYSTEM, admin=user)
            elif not Membership.objects.filter(workspace=ws, user=user).exists():
                Membership.objects.create(workspace=ws, user=user, role=Role.ADMIN)
            self.stdout.write(f"workspace: {ws.slug}")
        else:
            self.stdout.write("workspace: (none; create one from the dashboard's home page or the API)")
        self.stdout.write(f"username:  {username}")
        self.stdout.write(f"password:  {shown}")
