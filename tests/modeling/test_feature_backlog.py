"""Features as images arrive (modeling/feature_backlog.py), in this process: the backlog, its
claims, yielding to training, and the cache a default head-mode run then finds. The same with
real worker processes: tests/system/test_features_on_arrival.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from annotation.models import Image
from annotation.services import withdraw_consent
from modeling import feature_backlog
from modeling.artifacts import feature_cache_dir
from modeling.models import PendingFeatures, RunStatus, TrainingRun
from tests.modeling.training_data import make_dataset, make_labelled_patient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_default_run(settings):
    """The default training settings at 64 px, as the tiny data sets here are drawn."""
    settings.PAINSITE_TRAINING_IMAGE_SIZE = 64
    settings.PAINSITE_FEATURE_PATH = "float32"


def cached_vectors() -> list[Path]:
    return sorted(feature_cache_dir().rglob("*.npy"))


def test_every_stored_image_waits_on_the_backlog_once(clinician):
    make_dataset(clinician)
    ids = list(Image.objects.values_list("pk", flat=True))
    assert sorted(PendingFeatures.objects.values_list("image_id", flat=True)) == sorted(ids) and len(ids) == 28
    feature_backlog.enqueue(ids)  # asked again: still one row per image
    assert PendingFeatures.objects.count() == 28


def test_a_pass_computes_each_image_once_and_a_second_pass_computes_nothing(clinician):
    make_dataset(clinician)
    first = feature_backlog.work_through_backlog()
    assert (first.computed, first.cached, first.batches, first.yielded) == (28, 0, 1, False)
    assert first.feature_path == "float32" and PendingFeatures.objects.count() == 0
    assert len(cached_vectors()) == 28

    feature_backlog.enqueue(list(Image.objects.values_list("pk", flat=True)))
    second = feature_backlog.work_through_backlog()
    assert (second.computed, second.cached) == (0, 28) and PendingFeatures.objects.count() == 0
    assert len(cached_vectors()) == 28


def test_the_backlog_is_worked_through_in_order_in_batches(clinician, settings):
    make_dataset(clinician)
    oldest = list(PendingFeatures.objects.order_by("id").values_list("image_id", flat=True))
    report = feature_backlog.work_through_backlog(max_batches=0)
    assert report.batches == 0 and PendingFeatures.objects.count() == 28

    rows = feature_backlog.claim("first", size=10)
    assert [row.image_id for row in rows] == oldest[:10]
    # Another worker gets the next ten, never the claimed ones.
    assert [row.image_id for row in feature_backlog.claim("second", size=10)] == oldest[10:20]
    # A killed worker's claim runs out: its rows come back to the next worker, oldest first.
    PendingFeatures.objects.filter(claimed_by="first").update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert [row.image_id for row in feature_backlog.claim("third", size=12)] == oldest[:10] + oldest[20:22]


def test_the_backlog_yields_to_a_waiting_training_run_and_goes_on_after_it(clinician):
    make_dataset(clinician)
    run = TrainingRun.objects.create(config={}, status=RunStatus.QUEUED)
    report = feature_backlog.work_through_backlog()
    assert report.yielded and report.computed == 0 and PendingFeatures.objects.count() == 28
    assert cached_vectors() == []

    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    report = feature_backlog.work_through_backlog()
    assert not report.yielded and report.computed == 28


def test_images_of_a_patient_who_withdrew_get_no_features(clinician):
    kept = make_labelled_patient("C-1", "clinical", rater=clinician)
    gone = make_labelled_patient("C-2", "clinical", rater=clinician)
    withdraw_consent(patient=gone, actor=clinician)
    report = feature_backlog.work_through_backlog()
    assert report.computed == 4 and PendingFeatures.objects.count() == 0
    names = {path.stem for path in cached_vectors()}
    assert names == set(Image.objects.filter(patient=kept).values_list("sha256", flat=True))


def test_an_unreadable_image_is_skipped_and_the_rest_are_computed(clinician):
    make_labelled_patient("C-1", "clinical", rater=clinician)
    broken = Image.objects.order_by("pk").first()
    Path(broken.file.path).write_bytes(b"not a picture any more")
    report = feature_backlog.work_through_backlog()
    assert (report.computed, len(report.skipped)) == (3, 1) and PendingFeatures.objects.count() == 0


def test_a_failing_batch_is_tried_three_times_then_dropped(clinician, settings, tmp_path):
    make_labelled_patient("C-1", "clinical", rater=clinician)
    # The feature cache cannot be created: the data folder is a file.
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    settings.PAINSITE_DATA_DIR = blocked
    for attempt in (1, 2):
        report = feature_backlog.work_through_backlog(max_batches=1)
        assert report.dropped == 0
        assert set(PendingFeatures.objects.values_list("attempts", "claimed_by")) == {(attempt, "")}
        assert PendingFeatures.objects.first().last_error
    report = feature_backlog.work_through_backlog(max_batches=1)
    assert report.dropped == 4 and PendingFeatures.objects.count() == 0


def test_nothing_waits_when_features_on_arrival_are_off(clinician, settings):
    settings.PAINSITE_FEATURES_ON_ARRIVAL = False
    make_labelled_patient("C-1", "clinical", rater=clinician)
    assert PendingFeatures.objects.count() == 0


def test_the_cached_features_are_where_a_default_run_looks(clinician):
    """The backlog's configuration is a default head-mode run's: same backbone, size and path."""
    config = feature_backlog.default_train_config()
    assert config.mode == "head" and config.image_size == settings.PAINSITE_TRAINING_IMAGE_SIZE
    assert config.feature_path == settings.PAINSITE_FEATURE_PATH and config.seed == settings.PAINSITE_TRAINING_SEED


def test_one_task_does_a_bounded_share_and_sends_itself_again_for_the_rest(clinician, settings):
    from modeling.tasks import compute_pending_features

    settings.PAINSITE_FEATURES_BATCHES_PER_TASK = 1
    make_dataset(clinician)
    PendingFeatures.objects.filter(pk__in=PendingFeatures.objects.order_by("id").values("pk")[:10]).update(
        claimed_by="elsewhere", claimed_until=timezone.now() + timedelta(minutes=5)
    )
    first = compute_pending_features()
    assert first["batches"] == 1 and first["computed"] == 18 and first["more_pending"] is True
    PendingFeatures.objects.update(claimed_by="", claimed_until=None)
    second = compute_pending_features()
    assert second["computed"] == 10 and second["more_pending"] is False
    assert PendingFeatures.objects.count() == 0
