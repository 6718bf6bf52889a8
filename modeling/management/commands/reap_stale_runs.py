from __future__ import annotations

from django.core.management.base import BaseCommand

from modeling import services


class Command(BaseCommand):
    help = (
        "Resume (or fail, after PAINSITE_TRAINING_MAX_ATTEMPTS) training runs whose worker stopped "
        "sending heartbeats. Celery beat runs the same check every PAINSITE_REAPER_INTERVAL_SECONDS; "
        "this command is for cron or by hand."
    )

    def handle(self, *args, **options) -> None:
        reaped = services.reap_stale_runs()
        for item in reaped:
            self.stdout.write(f"run {item.run_id}: {item.action} (after {item.attempts} attempt(s))")
        if not reaped:
            self.stdout.write("no stale training runs")
