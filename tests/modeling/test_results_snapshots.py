"""/results/ and the paper table name the test snapshot of every number and rank only versions
scored on the same one."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from modeling.models import ModelVersion, Stage
from tests.modeling.factories import make_model_version, make_predictions, make_test_set, record_evaluation
from tests.modeling.results_html import read_cells

pytestmark = pytest.mark.django_db


def results_page(client, user, **query):
    client.force_login(user)
    response = client.get(reverse("results"), query)
    assert response.status_code == 200
    return response


@pytest.fixture
def grown():
    """v1 (production) scored on the old test set; v2, much better, only on a grown one."""
    old_set = make_test_set()
    new_set = make_test_set(patients_per_cohort=7, first_image_id=500)
    v1 = make_model_version(name="v1", predictions=make_predictions(old_set, skill=0.5, seed=1), stage=Stage.PRODUCTION)
    v2 = make_model_version(name="v2", predictions=make_predictions(new_set, skill=4.0, seed=2))
    return v1, v2, old_set, new_set


def test_best_is_marked_only_among_versions_scored_on_the_chosen_snapshot(client, researcher, grown):
    v1, v2, _, _ = grown
    old, new = v1.evaluations.get().snapshot, v2.evaluations.get().snapshot
    # Default: the newest snapshot holding the production version (v1's), although v2's is newer.
    response = results_page(client, researcher)
    assert response.context["snapshot"].pk == old.pk
    cells = read_cells(response.content.decode()).cells
    v1_auroc = cells[("combined", str(v1.pk), "macro_auroc")]
    v2_auroc = cells[("combined", str(v2.pk), "macro_auroc")]
    assert float(v2_auroc["value"]) > float(v1_auroc["value"])
    # v2 scores higher, but on other images: it is shown, named, and not ranked.
    assert "best" not in v2_auroc["classes"]
    assert f"snapshot #{new.pk}: other test images, not ranked" in cells[("combined", str(v2.pk), "0")]["text"]
    assert f"snapshot #{old.pk}" in cells[("combined", str(v1.pk), "0")]["text"]

    chosen = read_cells(results_page(client, researcher, snapshot=new.pk).content.decode()).cells
    assert "not ranked" in chosen[("combined", str(v1.pk), "0")]["text"]
    assert "not ranked" not in chosen[("combined", str(v2.pk), "0")]["text"]


def test_once_both_are_scored_on_one_snapshot_they_compete_for_best_on_it(client, researcher, grown):
    v1, v2, _, new_set = grown
    on_new = record_evaluation(v1, make_predictions(new_set, skill=0.5, seed=3))
    response = results_page(client, researcher)
    assert response.context["snapshot"].pk == on_new.snapshot_id  # newest holding production
    cells = read_cells(response.content.decode()).cells
    assert "best" in cells[("combined", str(v2.pk), "macro_auroc")]["classes"]
    assert "best" not in cells[("combined", str(v1.pk), "macro_auroc")]["classes"]
    v1_metrics = on_new.metrics["combined"]["macro_auroc"]
    assert float(cells[("combined", str(v1.pk), "macro_auroc")]["value"]) == v1_metrics


def test_an_unknown_snapshot_is_404(client, researcher, grown):
    client.force_login(researcher)
    assert client.get(reverse("results"), {"snapshot": 987654}).status_code == 404
    assert client.get(reverse("results"), {"snapshot": "newest"}).status_code == 404


def test_the_paper_exports_name_the_snapshot_and_where_training_targets_came_from(client, researcher, grown):
    v1, v2, _, new_set = grown
    on_new = record_evaluation(v1, make_predictions(new_set, skill=0.5, seed=3))
    ModelVersion.objects.filter(pk=v2.pk).update(
        data_manifest={"target_sources": {"train": {"observer_median": 7, "self_report": 113}}}
    )
    client.force_login(researcher)
    query = {"version": [v1.pk, v2.pk]}
    markdown = client.get(reverse("results-paper"), {**query, "format": "md"}).content.decode()
    snapshot = on_new.snapshot
    # Both versions share the grown snapshot: every row comes from it, and the notes say so.
    assert f"Test snapshot {snapshot.pk} (sha256 {snapshot.sha256[:12]}, 56 images from 14 patients" in markdown
    assert markdown.count("Test snapshot ") == 1
    assert "Training targets of v2 (label rule self_report_first): 7 observer median, 113 self-report." in markdown
    assert "Training targets of v1: sources not recorded" in markdown
    latex = client.get(reverse("results-paper"), {**query, "format": "tex"}).content.decode()
    assert f"Test snapshot {snapshot.pk} (sha256 {snapshot.sha256[:12]}" in latex
    csv_text = client.get(reverse("results-paper"), {**query, "format": "csv"}).content.decode()
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert len(rows) == 6 and {row["test_snapshot"] for row in rows} == {str(snapshot.pk)}
    assert {
        (row["version"], row["train_targets_self_report"], row["train_targets_observer_median"]) for row in rows
    } == {("v1", "", ""), ("v2", "113", "7")}
    page = client.get(reverse("results-paper"), query).content.decode()
    assert f"Test snapshot {snapshot.pk}" in page
