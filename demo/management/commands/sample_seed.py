"""Make a small workspace with one of everything the API serves (see demo/sample.py); prints the
admin's API token, and nothing else, on standard output."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from demo.sample import sample_workspace_create


class Command(BaseCommand):
    help = (
        "Create a workspace with one of every kind of object (no worker needed) and print an API token "
        "with every scope of its admin. For fuzzing and trying the API."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", default="sample")
        parser.add_argument("--admin", default="sample-admin", help="username of the workspace's admin")

    def handle(self, *args, workspace, admin, **options):
        try:
            sample = sample_workspace_create(slug=workspace, admin_username=admin)
        except ApplicationError as error:
            raise CommandError(error.detail) from None
        self.stdout.write(sample.token)
