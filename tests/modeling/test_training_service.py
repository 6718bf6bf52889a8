"""Starting a training run: config checks, the data snapshot, splits, one run per queue; and how a
running one writes its progress."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from annotation.models import Patient
from annotation.services import record_label
from modeling import services, training_runner
from modeling.models import RunStatus, SplitAssignment, TrainingRun
from modeling.serializers_training import clean_training_config
from painsite.core.models import AuditEvent
from tests.modeling.training_data import SMALL_CONFIG, make_dataset, make_labelled_patient

pytestmark = pytest.mark.django_db


def make_run(user, **config) -> TrainingRun:
    return services.start_training(requested_by=user, config={**SMALL_CONFIG, **config}, enqueue=False)


def test_it_fills_defaults_and_names_the_valid_options():
    config = clean_training_config({"cohorts": ["simulated"]})
    assert (
        config["cohorts"] == ["simulated"] and config["mode"] == "head" and config["label_rule"] == "self_report_first"
    )
    with pytest.raises(ValidationError) as error:
        clean_training_config({"mode": "turbo", "epochs": 0, "cohorts": ["dogs"], "colour": "red"})
    problems = error.value.message_dict
    assert "head, finetune" in problems["mode"][0]
    assert "between 1 and 500" in problems["epochs"][0]
    assert "clinical, simulated" in problems["cohorts"][0]
    assert "colour" in problems["non_field_errors"][0]


def test_it_rejects_a_fractional_epoch_count():
    with pytest.raises(ValidationError):
        clean_training_config({"epochs": 2.5})


def test_it_snapshots_consented_images_and_their_targets(researcher, clinician):
    make_dataset(clinician)
    withdrawn = make_labelled_patient("C-withdrawn", "clinical", rater=clinician, nrs=(3, 9))
    withdrawn.consent = "withdrawn"
    withdrawn.save()
    run = make_run(researcher, cohorts=["clinical"])
    images = TrainingRun.objects.get(pk=run.pk).snapshot.images
    assert "C-withdrawn" not in {item["patient"] for item in images}
    trained = [item for item in images if item["split"] in ("train", "val")]
    assert {item["cohort"] for item in trained} == {"clinical"}
    # The locked test patients of every cohort are kept for evaluation, never for training.
    assert {item["cohort"] for item in images if item["split"] == "test"} == {"clinical", "simulated"}
    assert {(item["nrs"], item["level"]) for item in images} == {(0, 0), (2, 1), (5, 2), (8, 3)}
    assert run.data_manifest["counts"] == {"train": 8, "val": 4, "test": 8}
    # The run's row, written at every epoch, does not carry the images: its snapshot does.
    assert "images" not in run.data_manifest and len(images) == 20


def test_it_uses_the_label_rule_for_targets(researcher, clinician, clinician2):
    make_dataset(clinician, nrs=(0, 2, 5, 8))
    for patient in Patient.objects.filter(code__in=["C-train-1", "C-val-3"]):
        for image in patient.images.all():
            record_label(image=image, rater=clinician2, nrs=10, kind="observer")
    by_rule = {}
    for rule in ("self_report_first", "observer_median"):
        run = make_run(researcher, label_rule=rule)
        by_rule[rule] = {item["nrs"] for item in run.snapshot.images if item["patient"] == "C-train-1"}
        services.cancel_training(run=run, actor=researcher)
    assert by_rule["self_report_first"] == {0, 2, 5, 8}
    assert by_rule["observer_median"] == {10}


def test_it_assigns_new_patients_once_and_never_moves_existing_ones(researcher, clinician):
    for number in range(10):
        make_labelled_patient(f"P-{number}", "clinical", rater=clinician, nrs=(number % 11,))
    first = make_run(researcher)
    splits = dict(SplitAssignment.objects.values_list("patient__code", "split"))
    assert len(splits) == 10 and set(splits.values()) == {"train", "val", "test"}
    services.cancel_training(run=first, actor=researcher)
    for number in range(10, 14):
        make_labelled_patient(f"P-{number}", "clinical", rater=clinician, nrs=(8,))
    second = make_run(researcher)
    after = dict(SplitAssignment.objects.values_list("patient__code", "split"))
    assert len(after) == 14
    assert {code: after[code] for code in splits} == splits
    patients_in = lambda run, split: {i["patient"] for i in run.snapshot.images if i["split"] == split}  # noqa: E731
    assert patients_in(second, "test") >= patients_in(first, "test")


def test_it_refuses_a_second_run_while_one_is_active(researcher, clinician):
    make_dataset(clinician)
    running = make_run(researcher)
    with pytest.raises(services.TrainingAlreadyActive) as conflict:
        make_run(researcher)
    assert conflict.value.active_run.pk == running.pk
    assert TrainingRun.objects.count() == 1


def test_the_database_refuses_two_active_runs_on_one_queue(researcher):
    from django.db import IntegrityError, transaction

    TrainingRun.objects.create(queue="training", status=RunStatus.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.create(queue="training", status=RunStatus.QUEUED)
    TrainingRun.objects.create(queue="gpu-2", status=RunStatus.QUEUED)


def test_it_refuses_a_run_without_training_data(researcher):
    with pytest.raises(ValidationError) as error:
        make_run(researcher)
    assert "no labelled images" in error.value.message_dict["cohorts"][0]
    assert not TrainingRun.objects.exists()


def test_it_enqueues_only_after_commit_and_audits_the_start(researcher, clinician, django_capture_on_commit_callbacks):
    make_dataset(clinician)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = services.start_training(requested_by=researcher, config=SMALL_CONFIG)
    assert len(callbacks) == 1
    assert run.status == RunStatus.QUEUED and run.celery_task_id
    event = AuditEvent.objects.get(action="training.start")
    assert event.actor == researcher and event.object_id == str(run.pk)


def test_cancelling_a_queued_run_ends_it_and_a_running_one_sets_the_flag(researcher, clinician):
    make_dataset(clinician)
    queued = make_run(researcher)
    services.cancel_training(run=queued, actor=researcher)
    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELLED
    running = make_run(researcher)
    TrainingRun.objects.filter(pk=running.pk).update(status=RunStatus.RUNNING)
    services.cancel_training(run=running, actor=researcher)
    running.refresh_from_db()
    assert running.status == RunStatus.RUNNING and running.cancel_requested
    assert AuditEvent.objects.filter(action="training.cancel").count() == 2
    with pytest.raises(services.RunNotActive):
        services.cancel_training(run=queued, actor=researcher)


def test_progress_reaches_the_row_at_every_epoch_keeps_its_warning_and_never_drops_the_last_event(monkeypatch):
    from modeling.ml.training import Progress

    # Within an epoch only one write per interval: a long interval holds back every later event.
    monkeypatch.setattr(training_runner, "PROGRESS_WRITE_INTERVAL", 3600)
    run = TrainingRun.objects.create(status=RunStatus.RUNNING, attempts=1)
    writer = training_runner.ProgressWriter(training_runner.Attempt(run), epochs=3, report_state=None)

    def row() -> TrainingRun:
        return TrainingRun.objects.get(pk=run.pk)

    writer(Progress(0, 3, 0, 0, None, 0.0, 0.0, None, "WARNING: no ImageNet weights found"))
    writer(Progress(1, 3, 1, 10, 0.9, 0.1, 1.0, 9.0))
    writer(Progress(1, 3, 2, 10, 0.8, 0.2, 2.0, 8.0))
    assert (row().epoch, row().loss) == (1, 0.9)
    writer(Progress(2, 3, 1, 10, 0.7, 0.4, 4.0, 6.0))
    assert (row().epoch, row().loss) == (2, 0.7) and row().message.startswith("WARNING: no ImageNet weights found; ")
    writer(Progress(2, 3, 10, 10, 0.5, 0.66, 6.0, 3.0))
    assert row().loss == 0.7
    writer.write_final(progress=training_runner.TRAINING_SHARE, message="evaluating", eta_seconds=None)
    final = row()
    assert (final.epoch, final.loss, final.message) == (2, 0.5, "evaluating")
    assert final.progress == pytest.approx(training_runner.TRAINING_SHARE)
    assert writer.seconds > 0  # the time ml_seconds leaves out
