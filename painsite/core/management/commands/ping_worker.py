from __future__ import annotations

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.core.management.base import BaseCommand, CommandError

from painsite.core.tasks import ping


class Command(BaseCommand):
    help = "Send a ping task to the `default` queue and wait for a worker to answer it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--timeout", type=float, default=60, help="seconds to wait (default 60)")

    def handle(self, *args, timeout: float, **options) -> None:
        result = ping.delay()
        try:
            answer = result.get(timeout=timeout)
        except CeleryTimeoutError as error:
            raise CommandError(f"no worker answered within {timeout:.0f}s: is `celery worker` running?") from error
        self.stdout.write(self.style.SUCCESS(f"worker {answer['host']} (pid {answer['pid']}) answered"))
