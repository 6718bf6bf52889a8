from __future__ import annotations

import os
import socket

from celery import shared_task


@shared_task(name="painsite.core.tasks.ping")
def ping() -> dict[str, object]:
    """Health check: proves a worker is consuming the `default` queue and can reach the database."""
    from painsite.core.models import AuditEvent

    return {"pong": True, "host": socket.gethostname(), "pid": os.getpid(), "audit_events": AuditEvent.objects.count()}
