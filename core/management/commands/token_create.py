"""Create an API token from the command line (for CI set-up); prints the secret once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.actors import Actor
from core.errors import ApplicationError
from core.models import Workspace
from core.tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a member of a workspace and print it (it is not stored)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True)
        parser.add_argument("--workspace", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--scope", action="append", dest="scopes", required=True)
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args, user, workspace, name, scopes, days, **options):
        owner = get_user_model().objects.filter(username=user).first()
        ws = Workspace.objects.filter(slug=workspace).first()
        if owner is None or ws is None:
            raise CommandError("no such user or workspace")
        try:
            _, raw = api_token_create(
                workspace=ws,
                actor=Actor(user=owner),
                user=owner,
                name=name,
                scopes=scopes,
                expires_in_days=days,
            )
        except ApplicationError as error:
            details = "; ".join(f"{e.field}: {e.message}" for e in error.errors)
            raise CommandError(f"{error.detail} {details}".strip()) from None
        self.stdout.write(raw)
