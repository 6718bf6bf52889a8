"""Migrations 0004 and 0005: each existing version's stored test predictions become its first evaluation,
on a snapshot rebuilt from them; going back and forth loses nothing."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from modeling.snapshots import snapshot_sha256
from tests.modeling.factories import LEVEL_NAMES, LEVEL_RANGES, make_predictions, make_test_set, metrics_for

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("modeling", "0003_training_snapshot"), ("annotation", "0004_queue_partial_indexes")]
# Forward again to every app's latest migration: stopping annotation at 0004 would leave the rest of
# the session's tests (and their worker processes) a database without its later columns.
AFTER = [("modeling", "0005_evaluations_from_stored_predictions")]


def latest_everywhere():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.fixture(autouse=True)
def back_to_the_latest_migrations():
    yield
    migrate(latest_everywhere())


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def make_old_version(apps, name: str, predictions, metrics):
    TrainingRun = apps.get_model("modeling", "TrainingRun")
    ModelVersion = apps.get_model("modeling", "ModelVersion")
    run = TrainingRun.objects.create(config={}, status="succeeded", progress=1.0)
    return ModelVersion.objects.create(
        name=name, training_run=run, stage="candidate", cohorts=["clinical"], mode="head",
        data_manifest={}, data_manifest_sha256="0" * 64, split_sha256="1" * 64, label_rule="self_report_first",
        pain_levels=[{"name": n, "nrs": list(r)} for n, r in zip(LEVEL_NAMES, LEVEL_RANGES, strict=True)],
        hyperparameters={}, seed=3, device="cpu", backbone="random-init", weights_path=f"/models/{name}.pt",
        weights_sha256=hashlib.sha256(name.encode()).hexdigest(), metrics=metrics, test_predictions=predictions,
    )  # fmt: skip


def test_stored_predictions_become_each_versions_first_evaluation_on_a_rebuilt_snapshot():
    old_apps = migrate(BEFORE)
    Patient = old_apps.get_model("annotation", "Patient")
    Image = old_apps.get_model("annotation", "Image")
    patient = Patient.objects.create(code="C000", cohort="clinical")
    stored = Image.objects.create(patient=patient, file="images/a.jpg", sha256="a" * 64, width=10, height=10)
    test_set = make_test_set(first_image_id=stored.pk)
    predictions = make_predictions(test_set, seed=1)
    metrics = metrics_for(predictions, n_bootstrap=30)
    v1 = make_old_version(old_apps, "v1", predictions, metrics)
    v2 = make_old_version(
        old_apps,
        "v2",
        make_predictions(test_set, seed=2),
        metrics_for(make_predictions(test_set, seed=2), n_bootstrap=30),
    )
    unscored = make_old_version(old_apps, "v3", [], {})

    new_apps = migrate(AFTER)
    Evaluation = new_apps.get_model("modeling", "Evaluation")
    TestSnapshot = new_apps.get_model("modeling", "TestSnapshot")
    ModelVersion = new_apps.get_model("modeling", "ModelVersion")
    first = Evaluation.objects.get(model_version_id=v1.pk)
    assert first.status == "succeeded" and first.at_training and first.progress == 1.0
    assert first.predictions == predictions and first.metrics == metrics
    assert (first.seed, first.resamples) == (0, 30)  # as the stored metrics' bootstrap says
    # Both versions scored the same images against the same references: one snapshot, so paired.
    assert Evaluation.objects.get(model_version_id=v2.pk).snapshot_id == first.snapshot_id
    assert not Evaluation.objects.filter(model_version_id=unscored.pk).exists()
    snapshot = TestSnapshot.objects.get()
    assert snapshot.reason == "migrated" and snapshot.n_images == len(test_set) and snapshot.n_patients == 12
    known = next(item for item in snapshot.images if item["image_id"] == stored.pk)
    assert (known["sha256"], known["file"]) == ("a" * 64, "images/a.jpg")
    assert snapshot.sha256 == snapshot_sha256(snapshot.images)
    assert snapshot.pain_levels == {"names": LEVEL_NAMES, "ranges": [list(r) for r in LEVEL_RANGES]}
    # The version rows keep what the API's `metrics` field reads.
    assert ModelVersion.objects.get(pk=v1.pk).metrics == metrics

    back_apps = migrate(BEFORE)
    assert back_apps.get_model("modeling", "ModelVersion").objects.get(pk=v1.pk).test_predictions == predictions
    migrate(AFTER)
    assert new_apps.get_model("modeling", "Evaluation").objects.count() == 2
