from __future__ import annotations

import secrets

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from painsite.core.roles import ADMIN, CLINICIAN, RESEARCHER, assign_role

DEMO_USERS = (("clinician", CLINICIAN), ("researcher", RESEARCHER), ("admin", ADMIN))


class Command(BaseCommand):
    help = (
        "Create one demo user per role (clinician, researcher, admin) with fresh random passwords "
        "and print them. Existing demo users get a new password. For demos only: never on real data."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password-file", help="also write 'username password' lines to this file (mode 600)")

    def handle(self, *args, password_file: str | None = None, **options) -> None:
        lines = []
        for username, role in DEMO_USERS:
            password = secrets.token_urlsafe(12)
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.save()
            assign_role(user, role)
            lines.append(f"{username} {password}")
            self.stdout.write(f"  {role:<11} username: {username:<11} password: {password}")
        if password_file:
            import os

            with open(password_file, "w") as handle:
                os.chmod(password_file, 0o600)
                handle.write("\n".join(lines) + "\n")
