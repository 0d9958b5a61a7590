"""Rebuild the graph database from the relational lineage record."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.models import Workspace
from lineage.projection import GraphUnavailable, lineage_resync


class Command(BaseCommand):
    help = "Rebuild the Neo4j lineage graph from the relational record (all workspaces, or --workspace)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="slug of the one workspace to rebuild")

    def handle(self, *args, workspace=None, **options):
        if not settings.NEO4J_URI:
            raise CommandError("NEO4J_URI is not set: the SQL graph store needs no resync")
        ws = None
        if workspace:
            ws = Workspace.objects.filter(slug=workspace).first()
            if ws is None:
                raise CommandError(f"no workspace called {workspace!r}")
        try:
            counts = lineage_resync(workspace=ws)
        except GraphUnavailable as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"resynced {counts['nodes']} nodes and {counts['edges']} edges")
