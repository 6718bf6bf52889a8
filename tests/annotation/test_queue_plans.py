"""The labeling queue stays an index lookup in PostgreSQL when the planner's statistics are stale.

Statistics are gathered while there is a backlog of never-labeled images; then the backlog is
labeled. A plan that walks the primary key and filters on the counter would now read every
image on every request; the queue's partial indexes keep it at the first matching row.
"""

from __future__ import annotations

import pytest
from django.db import connection

from annotation.models import Image
from annotation.selectors import QUEUE_SECOND_OBSERVER, QUEUE_UNLABELED, queue_steps
from tests.annotation.factories import make_patient
from tests.annotation.plans import image_rows_read

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="checks PostgreSQL plans: set DATABASE_URL=postgres://..."
    ),
]

N_IMAGES = 5000


@pytest.fixture
def labeled_backlog():
    patient = make_patient()
    Image.objects.bulk_create(
        Image(patient=patient, file=f"images/plan/{n}.jpg", sha256=f"{n:064x}", width=640, height=480)
        for n in range(N_IMAGES)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE annotation_image, annotation_patient")
    # The backlog gets labeled (two observers each) after the statistics were taken.
    Image.objects.update(label_count=2, observer_rater_count=2)
    return patient


def steps_for(user) -> dict[str, object]:
    return dict(queue_steps(user))


def test_an_empty_unlabeled_step_reads_no_images(labeled_backlog, clinician):
    assert image_rows_read(steps_for(clinician)[QUEUE_UNLABELED][:1]) == 0


def test_the_second_observer_step_reads_only_images_that_need_one(labeled_backlog, clinician):
    last = Image.objects.order_by("-id").first()
    Image.objects.filter(pk=last.pk).update(observer_rater_count=1)
    assert image_rows_read(steps_for(clinician)[QUEUE_SECOND_OBSERVER][:1]) == 1
