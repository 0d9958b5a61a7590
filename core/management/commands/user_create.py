"""Create a person's account from the server (operators): the sign-in a workspace admin then invites
to a workspace. The password is generated and shown once, or read from standard input; it must pass
the configured password validators."""

import secrets
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction


class Command(BaseCommand):
    help = "Create a user who signs in with a password (shown once, or read with --password-stdin)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )

    @transaction.atomic
    def handle(self, *args, username, email, password_stdin, **options):
        users = get_user_model()
        candidate = users(username=username, email=email)
        try:
            candidate.full_clean(exclude=["password"])
        except ValidationError as error:
            problems = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
            )
            raise CommandError(problems) from None
        password = sys.stdin.readline().rstrip("\n") if password_stdin else secrets.token_urlsafe(12)
        try:
            validate_password(password, candidate)
        except ValidationError as error:
            raise CommandError("password: " + " ".join(error.messages)) from None
        candidate.set_password(password)
        candidate.save()
        self.stdout.write(f"created {username}")
        if not password_stdin:
            self.stdout.write(f"password:  {password}   (shown once: hand it over by a safe channel)")
        self.stdout.write('a workspace admin can now invite them: POST /api/v1/members {"username": ...}')
