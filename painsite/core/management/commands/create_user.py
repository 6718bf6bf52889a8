from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from painsite.core.people import PeopleError, create_person
from painsite.core.roles import ROLES


class Command(BaseCommand):
    help = (
        "Create an account with a role (clinician, researcher or admin), for scripts and first set-up. "
        "The password is asked for twice at a terminal, read from standard input with --password-stdin, "
        "or generated and printed once with --generate-password. The creation is written to the audit log."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help=f"one of: {', '.join(ROLES)}")
        parser.add_argument("--email", default="")
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--password-stdin", action="store_true", help="read the password from the first line of stdin"
        )
        source.add_argument("--generate-password", action="store_true", help="generate a password and print it once")

    def handle(
        self, *args, username: str, role: str, email: str, password_stdin: bool, generate_password: bool, **options
    ) -> None:
        if role not in ROLES:
            raise CommandError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("--password-stdin read an empty password")
        elif generate_password:
            password = None
        else:
            password = self._prompt()
        try:
            user, generated = create_person(actor=None, username=username, role=role, email=email, password=password)
        except PeopleError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"Created {user.username} as {role}."))
        if generated:
            self.stdout.write(f"password: {generated}  (shown once; it is stored only as a hash)")

    def _prompt(self) -> str:
        if not sys.stdin.isatty():
            raise CommandError("no terminal to ask for a password: use --password-stdin or --generate-password")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the two passwords differ; nothing was created")
        if not first:
            raise CommandError("empty password; nothing was created")
        return first
