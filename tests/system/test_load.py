"""The labeling load (bench/load.py) for 10 seconds: 16 clinicians at once against gunicorn with
several workers on PostgreSQL. Every label acknowledged with 201 is stored exactly once."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from bench.load import check_labels, gunicorn, prepare, run_load
from tests.measurements import record
from tests.workers import database_url_for_subprocess

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the load runs several web processes at once: set DATABASE_URL=postgres://... (SQLite has one writer)",
    ),
]

CLIENTS = 16
SECONDS = 10


def test_sixteen_clinicians_labeling_at_once_lose_and_duplicate_nothing(tmp_path):
    data = prepare(clinicians=CLIENTS, images=24)
    with gunicorn(
        database_url=database_url_for_subprocess(),
        media_root=settings.MEDIA_ROOT,
        data_dir=settings.PAINSITE_DATA_DIR,
        workers=3,
        threads=4,
        log_path=tmp_path / "gunicorn.log",
    ) as port:
        result = run_load(port=port, tokens=data.tokens, image_ids=data.image_ids, seconds=SECONDS)
    summary = result.summary()
    assert summary["statuses"] == {"201": summary["requests"]}, (summary, result.errors[:5])
    assert summary["labels_acknowledged"] >= 50, summary  # every client got through, many times
    check = check_labels(acknowledged=result.acknowledged, rater_ids=data.rater_ids)
    assert check["lost"] == [] and check["stored_but_not_acknowledged"] == [], check
    assert check["acknowledged_twice"] == 0 and check["chains_with_two_starts"] == 0, check
    assert check["image_counter_mismatches"] == [], check
    record("labeling_load", {
        **summary, "gunicorn": {"workers": 3, "threads": 4}, "images": 24,
        "check": {**check, "lost": len(check["lost"]), "stored_but_not_acknowledged": len(check["stored_but_not_acknowledged"]),
                  "image_counter_mismatches": len(check["image_counter_mismatches"])},
    })  # fmt: skip
