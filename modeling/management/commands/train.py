from __future__ import annotations

import time

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from modeling import services, training_runner
from modeling.label_rules import LABEL_RULES
from modeling.models import RunStatus, TrainingRun
from modeling.training_config import COHORTS, MODES

NO_WORKER_HINT_SECONDS = 30


class Command(BaseCommand):
    help = (
        "Start a training run, as the training page does. The run executes on a Celery worker "
        "consuming the `training` queue (`make run` starts one; otherwise "
        "`celery -A painsite worker -Q training -c 1`). --wait follows its progress until it ends. "
        "--inline runs it in this process instead, without any worker (for a shell on the GPU machine)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--cohort", action="append", choices=COHORTS, dest="cohorts", help="repeat for both (default: both)"
        )
        parser.add_argument("--mode", choices=MODES)
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--lr", type=float)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--label-rule", choices=LABEL_RULES)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--image-size", type=int)
        parser.add_argument("--patience", type=int)
        parser.add_argument("--user", help="username recorded as the requester (default: none, 'system')")
        parser.add_argument("--wait", action="store_true", help="print progress until the run ends")
        parser.add_argument(
            "--inline", action="store_true", help="train in this process, not on a worker (INLINE: no Celery involved)"
        )

    def handle(self, *args, wait: bool, inline: bool, user: str | None, **options) -> None:
        keys = ("cohorts", "mode", "epochs", "lr", "batch_size", "label_rule", "seed", "image_size", "patience")
        config = {key: options[key] for key in keys if options.get(key) is not None}
        requested_by = None
        if user:
            requested_by = User.objects.filter(username=user).first()
            if requested_by is None:
                raise CommandError(f"no user named {user!r}")
        try:
            run = services.start_training(requested_by=requested_by, config=config, enqueue=not inline)
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
            ) from None
        except services.TrainingAlreadyActive as conflict:
            raise CommandError(str(conflict)) from None
        self.stdout.write(f"training run {run.pk} queued: {run.config}")
        if inline:
            self.stdout.write("INLINE: training in this process (no Celery worker)")
            training_runner.execute(run.pk, report_state=lambda state: self._print(run.pk, state))
        elif not wait:
            self.stdout.write(f"follow it on /training/ or with GET /api/training-runs/{run.pk}/")
            return
        self._follow(run.pk)

    def _print(self, run_id: int, state: dict) -> None:
        self.stdout.write(f"run {run_id}: {state['progress'] * 100:5.1f}%  {state['message']}")

    def _follow(self, run_id: int) -> None:
        started = time.monotonic()
        last_message = None
        hinted = False
        while True:
            run = TrainingRun.objects.defer("data_manifest").get(pk=run_id)
            line = f"run {run_id}: {run.status} {run.progress * 100:5.1f}%  {run.message}"
            if line != last_message:
                self.stdout.write(line)
                last_message = line
            if not run.is_active:
                break
            if run.status == RunStatus.QUEUED and not hinted and time.monotonic() - started > NO_WORKER_HINT_SECONDS:
                self.stderr.write(
                    "still queued: is a worker consuming the `training` queue? "
                    "Start one with `celery -A painsite worker -Q training -c 1`, or use --inline."
                )
                hinted = True
            time.sleep(1)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"training run {run_id} {run.status}: {run.error or run.message}")
        self.stdout.write(self.style.SUCCESS(f"training run {run_id} succeeded: {run.model_version.name}"))
