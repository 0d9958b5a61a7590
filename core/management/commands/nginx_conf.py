"""Print or write the nginx configuration for the web tier's front (core/nginx.py; scripts/web.sh
starts nginx with it in front of gunicorn's sync workers)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.nginx import Front, render


class Command(BaseCommand):
    help = "Write an nginx.conf that serves gunicorn's sync workers, refusing excess load with fast 503s."

    def add_arguments(self, parser):
        parser.add_argument("--listen", required=True, help="nginx's listen address, e.g. 127.0.0.1:8000")
        parser.add_argument(
            "--upstream", required=True, help="gunicorn's address: unix:/path/web.sock or 127.0.0.1:8001"
        )
        parser.add_argument(
            "--max-conns",
            type=int,
            help="requests at once passed to the workers (default: WEB_FRONT_MAX_CONNS, else 3 per worker)",
        )
        parser.add_argument("--prefix", required=True, help="a directory for nginx's pid and temporary files")
        parser.add_argument("--error-log", required=True)
        parser.add_argument("--access-log", default="off", help="a file, or off (the default)")
        parser.add_argument("--upstream-timeout", type=int, default=120, help="seconds (default 120)")
        parser.add_argument(
            "--priority",
            type=int,
            help="the nice value of nginx's workers (default: WEB_FRONT_PRIORITY)",
        )
        parser.add_argument("--user", default="", help="the user of nginx's workers when it starts as root")
        parser.add_argument("--output", help="write the file here instead of printing it")

    def handle(self, *args, output=None, **options):
        front = Front(
            listen=options["listen"],
            upstream=options["upstream"],
            max_conns=options["max_conns"] or settings.WEB_FRONT_MAX_CONNS,
            prefix=str(Path(options["prefix"]).resolve()),
            error_log=options["error_log"],
            access_log=options["access_log"],
            upstream_timeout=options["upstream_timeout"],
            user=options["user"],
            priority=settings.WEB_FRONT_PRIORITY if options["priority"] is None else options["priority"],
        )
        try:
            text = render(front)
        except ValueError as error:
            raise CommandError(str(error)) from error
        if output:
            Path(output).write_text(text)
        else:
            self.stdout.write(text, ending="")
