"""Fill the demo workspace from the Adult census data (see demo/seed.py); prints the accounts."""

import os

from django.core.management.base import BaseCommand, CommandError

from demo.seed import Seeder, SeedError


class Command(BaseCommand):
    help = (
        "Seed a workspace with the Adult census demo: datasets, lineage, two model versions, datasheets, "
        "policies, explanations, fairness assessments and DP statistics (computed by the running Celery "
        "worker), promotion requests and a report. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", default=os.environ.get("MLGOV_WORKSPACE", "demo"))
        parser.add_argument(
            "--password",
            default=os.environ.get("MLGOV_DEMO_PASSWORD"),
            help="one password for every demo account (default: a random one each, printed)",
        )
        parser.add_argument(
            "--reset-passwords", action="store_true", help="give existing demo accounts new passwords"
        )
        parser.add_argument(
            "--explain-rows", type=int, default=1000, help="holdout rows each explanation covers"
        )
        parser.add_argument("--trees", type=int, default=100, help="trees per random forest")
        parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the worker")
        parser.add_argument("--base-url", default="", help="printed before the dashboard paths")

    def handle(
        self, *args, workspace, password, reset_passwords, explain_rows, trees, timeout, base_url, **opts
    ):
        seeder = Seeder(
            workspace=workspace,
            say=self.say,
            password=password,
            reset_passwords=reset_passwords,
            explain_rows=explain_rows,
            trees=trees,
            timeout=timeout,
        )
        try:
            outcome = seeder.run()
        except SeedError as error:
            self.accounts(seeder.outcome)  # passwords already set are not lost with the error
            raise CommandError(str(error)) from None
        except Exception:
            self.accounts(seeder.outcome)
            raise
        write = self.stdout.write
        self.accounts(outcome)
        for username, token in outcome.tokens.items():
            variable = "MLGOV_TOKEN" if username == "dana" else "MLGOV_CI_TOKEN"
            write(f"  API token for {username} (shown once): export {variable}={token}")
        write("")
        base = base_url.rstrip("/")
        write(f"Dashboard:        {base}/w/{outcome.workspace}/")
        if outcome.pending_request:
            write(f"Pending request:  {base}/w/{outcome.workspace}/reviews/{outcome.pending_request}/")
        if outcome.report:
            write(f"Audit report:     {base}/w/{outcome.workspace}/reports/{outcome.report}/")

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def accounts(self, outcome) -> None:
        if not outcome.accounts:
            return
        self.stdout.write("")
        self.stdout.write("Demo accounts (sign in at /accounts/login/):")
        for username, role, shown, what in outcome.accounts:
            self.stdout.write(f"  {username:<8} {role:<20} password: {shown:<16}  {what}")
