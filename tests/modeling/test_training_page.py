"""The training page: start form, runs with live progress, cancel."""

from __future__ import annotations

import pytest
from django.urls import reverse

from modeling.models import RunStatus, TrainingRun
from tests.conftest import PASSWORD
from tests.modeling.registry_data import make_model_version
from tests.modeling.training_data import make_dataset

pytestmark = pytest.mark.django_db


def logged_in(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


def form_data(**overrides):
    data = {
        "cohorts": ["clinical", "simulated"],
        "mode": "head",
        "epochs": 3,
        "lr": 0.001,
        "batch_size": 8,
        "label_rule": "self_report_first",
        "seed": 1,
        "image_size": 64,
        "patience": 3,
    }
    return {**data, **overrides}


def test_the_page_shows_the_form_with_defaults_and_the_runs(client, researcher):
    version = make_model_version("v1")
    response = logged_in(client, researcher).get(reverse("training"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="epochs"' in page and 'value="30"' in page and "self_report_first" in page
    assert f'data-run-id="{version.training_run_id}"' in page
    assert reverse("results-version", args=[version.pk]) in page and "random-init backbone" in page
    assert "js/training.js" in page


def test_clinicians_get_403_and_anonymous_users_go_to_login(client, clinician):
    assert client.get(reverse("training")).status_code == 302
    assert logged_in(client, clinician).get(reverse("training")).status_code == 403


def test_posting_the_form_queues_a_run(client, researcher, clinician, django_capture_on_commit_callbacks):
    make_dataset(clinician, splits={"clinical": ["train", "val"]})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = logged_in(client, researcher).post(reverse("training"), form_data(cohorts=["clinical"]), follow=True)
    run = TrainingRun.objects.get()
    assert run.status == RunStatus.QUEUED and run.config["cohorts"] == ["clinical"] and len(callbacks) == 1
    assert f"Training run {run.pk} is queued." in response.content.decode()
    assert f'data-progress-url="{reverse("training-run-progress", args=[run.pk])}"' in response.content.decode()


def test_the_form_keeps_the_seed_of_the_researchers_last_run(
    client, researcher, clinician, django_capture_on_commit_callbacks
):
    make_dataset(clinician, splits={"clinical": ["train", "val"]})
    with django_capture_on_commit_callbacks(execute=False):
        response = logged_in(client, researcher).post(
            reverse("training"), form_data(cohorts=["clinical"], seed=4242), follow=True
        )
    assert TrainingRun.objects.get().config["seed"] == 4242
    assert 'name="seed" value="4242"' in response.content.decode()


def test_an_invalid_form_re_renders_with_422(client, researcher):
    response = logged_in(client, researcher).post(reverse("training"), form_data(epochs=0, cohorts=[]))
    assert response.status_code == 422
    assert not TrainingRun.objects.exists()


def test_a_second_run_is_refused_with_the_active_runs_number(client, researcher):
    active = TrainingRun.objects.create(status=RunStatus.RUNNING)
    response = logged_in(client, researcher).post(reverse("training"), form_data())
    assert response.status_code == 409
    assert f"training run {active.pk} is already running" in response.content.decode()


def test_the_progress_endpoint_reports_the_run(client, researcher):
    run = TrainingRun.objects.create(
        status=RunStatus.RUNNING,
        progress=0.45,
        epoch=2,
        loss=0.73,
        eta_seconds=12,
        message="epoch 2/3",
        config={"epochs": 3},
    )
    response = logged_in(client, researcher).get(reverse("training-run-progress", args=[run.pk]))
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert (body["status"], body["progress"], body["epoch"], body["epochs"], body["loss"]) == (
        "running",
        0.45,
        2,
        3,
        0.73,
    )


def test_the_cancel_button_stops_a_queued_run(client, researcher):
    run = TrainingRun.objects.create(status=RunStatus.QUEUED)
    page = logged_in(client, researcher).get(reverse("training")).content.decode()
    assert reverse("training-run-cancel", args=[run.pk]) in page
    response = client.post(reverse("training-run-cancel", args=[run.pk]), follow=True)
    assert f"Training run {run.pk} was cancelled." in response.content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
