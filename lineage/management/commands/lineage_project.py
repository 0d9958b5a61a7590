"""Apply pending lineage outbox entries to the graph database now."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lineage.projection import GraphUnavailable, outbox_drain, outbox_pending


class Command(BaseCommand):
    help = "Drain the lineage outbox into the graph database."

    def handle(self, *args, **options):
        if not settings.NEO4J_URI:
            raise CommandError("NEO4J_URI is not set: there is no graph database to project into")
        try:
            applied = outbox_drain()
        except GraphUnavailable as error:
            raise CommandError(f"{error}; {outbox_pending()} entries stay pending") from None
        self.stdout.write(f"applied {applied} outbox entries; {outbox_pending()} pending")
