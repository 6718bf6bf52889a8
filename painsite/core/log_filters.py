"""Logging filters named in settings.LOGGING."""

from __future__ import annotations

import logging


class RefusalsWithoutTraceback(logging.Filter):
    """A 403 is an expected answer, not a fault: log its one line, without the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True


class QuietRoutineTasks(logging.Filter):
    """Beat sends a ward round every second or so: Celery's own "sending due task", "received",
    "succeeded" and "discarding revoked" (expired in the queue) lines for it would bury everything
    else in a worker's log. They are dropped at INFO and below; a failed round is still logged, and
    a round logs what changed itself (a camera offline or back, an alert, missed slots, no
    production model: modeling/ward_rounds.py)."""

    ROUTINE_TASKS = ("modeling.tasks.run_ward_round",)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(task in message for task in self.ROUTINE_TASKS)
