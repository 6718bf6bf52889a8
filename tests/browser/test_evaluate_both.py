"""A researcher compares two versions scored on different test sets, clicks "Evaluate both on
the current test set", follows the progress, and ends on the paired comparison."""

from __future__ import annotations

import pytest

from modeling import evaluations
from modeling.models import Evaluation, EvaluationStatus, SplitAssignment, Stage
from modeling.snapshots import take_test_snapshot
from tests.modeling.tiny_model import make_model_version, tiny_model
from tests.modeling.training_data import make_dataset, make_labelled_patient
from tests.workers import celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.system]


def evaluated_now(version, snapshot) -> Evaluation:
    evaluation, _ = evaluations.request_evaluation(version=version, snapshot=snapshot, requested_by=None, enqueue=False)
    assert evaluations.run_evaluation(evaluation.pk) == EvaluationStatus.SUCCEEDED
    return evaluation


def test_evaluate_both_pairs_two_versions_scored_on_different_test_sets(
    page_for, researcher, clinician, settings, test_broker_url, worker_log_dir, artifacts_dir
):
    settings.PAINSITE_BOOTSTRAP_RESAMPLES = 200
    make_dataset(clinician)
    v1 = make_model_version(tiny_model(), name="v1", stage=Stage.CANDIDATE)
    v2 = make_model_version(tiny_model(head_hidden=16), name="v2", stage=Stage.PRODUCTION)
    evaluated_now(v1, take_test_snapshot(label_rule="self_report_first"))
    # Clinicians add a test patient: v2 is scored on the grown test set, v1 never was.
    patient = make_labelled_patient("C-test-9", "clinical", rater=clinician)
    SplitAssignment.objects.create(patient=patient, split="test", seed=0)
    grown = take_test_snapshot(label_rule="self_report_first")
    evaluated_now(v2, grown)

    with celery_worker(
        broker_url=test_broker_url, queues=("default",), log_dir=worker_log_dir, PAINSITE_BOOTSTRAP_RESAMPLES="200"
    ) as worker:
        page = page_for(researcher, viewport={"width": 1280, "height": 900})
        page.goto(f"/results/compare/?a={v1.pk}&b={v2.pk}&cohort=combined")
        combined = page.locator('[data-cohort-panel="combined"]')
        assert "No paired test." in combined.locator(".not-paired").inner_text()
        button = page.get_by_role("button", name="Evaluate both on the current test set")
        button.click()
        page.locator("[data-evaluate-progress]").wait_for()
        page.locator("[data-paired-snapshot]").wait_for(timeout=120_000)
        log = worker.log()

    rescored = Evaluation.objects.get(model_version=v1, snapshot=grown)
    assert rescored.status == EvaluationStatus.SUCCEEDED, (rescored.error, log)
    assert page.locator("[data-paired-snapshot]").get_attribute("data-paired-snapshot") == str(grown.pk)
    assert page.locator("[data-evaluate-both]").count() == 0
    note = combined.locator(".paired-note").inner_text()
    assert f"Paired on the same {grown.n_images} test images" in note and f"snapshot #{grown.pk}" in note
    # Every level shows a ΔAUROC, and a p-value or the reason it is not estimable.
    rows = combined.locator("table.compare-table tbody tr[data-level]")
    assert rows.count() == 4
    for i in range(4):
        cells = rows.nth(i).locator("td")
        assert cells.nth(2).get_attribute("data-value"), "no ΔAUROC"
        p_cell = cells.nth(3)
        assert p_cell.get_attribute("data-value") or "not estimable" in p_cell.inner_text(), p_cell.inner_text()
    page.locator("#compare-combined").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "results-evaluate-both.png"), full_page=True)
    problems = [m for m in page.console_messages if m.startswith("pageerror") or "Content Security Policy" in m]
    assert problems == []
