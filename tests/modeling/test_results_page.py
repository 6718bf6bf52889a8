"""The results pages: versions × metrics, comparison, version detail."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from modeling.ml.comparison import compare_predictions
from modeling.models import ModelVersion, PromotionEvent, Stage
from modeling.results import COHORTS, results_table
from tests.modeling.factories import LEVEL_NAMES, make_model_version, make_predictions, make_test_set, metrics_for
from tests.modeling.results_html import read_cells

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(researcher):
    test_set = make_test_set()
    weak = make_model_version(
        name="v1", predictions=make_predictions(test_set, skill=0.8, seed=1), created_by=researcher
    )
    strong = make_model_version(
        name="v2", predictions=make_predictions(test_set, skill=2.5, seed=2), cohorts=["clinical", "simulated"]
    )
    return weak, strong


def page(client, user, url):
    client.force_login(user)
    return client.get(url)


def test_the_table_shows_exactly_the_stored_metrics_of_every_version(client, researcher, two_versions):
    response = page(client, researcher, reverse("results"))
    assert response.status_code == 200
    cells = read_cells(response.content.decode()).cells
    checked = 0
    for version in two_versions:
        for cohort in COHORTS:
            stored = version.metrics[cohort]
            row = str(version.pk)
            for name in LEVEL_NAMES:
                assert cells[(cohort, row, f"auroc:{name}")]["value"] == repr(stored["levels"][name]["auroc"])
                assert cells[(cohort, row, f"f1:{name}")]["value"] == repr(stored["levels"][name]["f1"])
                if stored["levels"][name]["ci"]:
                    low, high = stored["levels"][name]["ci"]
                    assert f"{low:.3f}–{high:.3f}" in cells[(cohort, row, f"auroc:{name}")]["text"]
                else:  # a test set this small supports no interval: the reason is shown instead
                    reason = stored["levels"][name]["ci_not_estimable"]
                    assert f"not estimable ({reason})" in cells[(cohort, row, f"auroc:{name}")]["text"]
                checked += 3
            assert cells[(cohort, row, "macro_auroc")]["value"] == repr(stored["macro_auroc"])
            assert cells[(cohort, row, "macro_f1")]["value"] == repr(stored["macro_f1"])
            assert cells[(cohort, row, "kappa_quadratic")]["value"] == repr(stored["kappa_quadratic"])
            assert cells[(cohort, row, "n_images")]["value"] == repr(stored["n_images"])
            assert cells[(cohort, row, "n_patients")]["value"] == repr(stored["n_patients"])
    assert checked == 2 * 3 * 4 * 3


def test_the_best_value_in_each_score_column_is_marked_in_bold_with_an_asterisk(client, researcher, two_versions):
    weak, strong = two_versions
    cells = read_cells(page(client, researcher, reverse("results")).content.decode()).cells
    for cohort in COHORTS:
        for column in ["macro_auroc", "macro_f1", "kappa_quadratic", *(f"auroc:{n}" for n in LEVEL_NAMES)]:
            values = {v.pk: float(cells[(cohort, str(v.pk), column)]["value"]) for v in two_versions}
            best = max(values, key=values.get)
            other = min(values, key=values.get)
            if round(values[best], 3) == round(values[other], 3):
                continue
            assert "best" in cells[(cohort, str(best), column)]["classes"]
            assert "*" in cells[(cohort, str(best), column)]["text"]
            assert "(best)" in cells[(cohort, str(best), column)]["text"]
            assert "best" not in cells[(cohort, str(other), column)]["classes"]
        # Test-set sizes describe the data; they never compete.
        assert "best" not in cells[(cohort, str(strong.pk), "n_images")]["classes"]
    assert "best value in its column" in page(client, researcher, reverse("results")).content.decode()


def test_ties_at_the_displayed_precision_are_all_marked(researcher):
    predictions = make_predictions(make_test_set(), seed=3)
    metrics = metrics_for(predictions)
    first = make_model_version(name="v1", predictions=predictions, metrics=metrics)
    second = make_model_version(name="v2", predictions=predictions, metrics=metrics)
    table = results_table([first, second], "combined")
    macro = [column.key for column in table.columns].index("macro_auroc")
    assert [row.cells[macro].best for row in table.rows] == [True, True]


def test_the_cohort_shown_first_follows_the_query_and_the_others_are_in_the_page(client, researcher, two_versions):
    reader = read_cells(page(client, researcher, reverse("results") + "?cohort=simulated").content.decode())
    assert reader.hidden_panels == {"clinical", "combined"}
    assert {key[0] for key in reader.cells} == set(COHORTS)


def test_random_init_versions_are_flagged_and_the_production_version_is_marked(client, researcher):
    make_model_version(name="v1", backbone="random-init")
    make_model_version(name="v2", stage=Stage.PRODUCTION)
    html = page(client, researcher, reverse("results")).content.decode()
    assert html.count('<span class="flag">random-init backbone</span>') == len(COHORTS) + 1  # + the legend
    assert 'class="is-production"' in html
    assert '<span class="stage stage-production">Production</span>' in html


def test_the_stage_filter_shows_only_versions_at_that_stage(client, researcher):
    candidate = make_model_version(name="v1")
    production = make_model_version(name="v2", stage=Stage.PRODUCTION)
    cells = read_cells(page(client, researcher, reverse("results") + "?stage=production").content.decode()).cells
    rows = {row for _, row, _ in cells}
    assert str(production.pk) in rows
    assert str(candidate.pk) not in rows


def test_the_page_for_50_versions_runs_a_fixed_number_of_queries_without_loading_predictions(
    client, researcher, django_assert_num_queries
):
    predictions = make_predictions(make_test_set(patients_per_cohort=4, images_per_patient=3))
    metrics = metrics_for(predictions, n_bootstrap=50)
    for index in range(50):
        make_model_version(name=f"v{index + 1}", predictions=predictions, metrics=metrics, created_by=researcher)
    client.force_login(researcher)
    # session, user, role groups for the menu, permissions (user and role in one query), the versions,
    # the random-init production banner, the default snapshot (one holding production, else the newest:
    # two queries), the versions' evaluations, and the snapshots to choose from.
    with django_assert_num_queries(10) as captured:
        response = client.get(reverse("results"))
    assert response.status_code == 200
    assert read_cells(response.content.decode()).cells.keys() >= {
        ("combined", str(v), "macro_auroc") for v in ModelVersion.objects.values_list("pk", flat=True)
    }
    versions_query = next(
        query["sql"]
        for query in captured.captured_queries
        if "modeling_modelversion" in query["sql"] and '"backbone" = ' not in query["sql"]
    )
    assert "test_predictions" not in versions_query
    assert "data_manifest" not in versions_query.replace("data_manifest_sha256", "")
    evaluations_query = next(
        query["sql"] for query in captured.captured_queries if 'FROM "modeling_evaluation"' in query["sql"]
    )
    assert '"predictions"' not in evaluations_query and '"images"' not in evaluations_query


def test_clinicians_and_outsiders_get_403_and_anonymous_users_go_to_login(client, clinician, outsider, two_versions):
    weak, strong = two_versions
    urls = [
        reverse("results"),
        reverse("results-paper"),
        reverse("results-compare") + f"?a={weak.pk}&b={strong.pk}",
        reverse("results-version", args=[weak.pk]),
    ]
    for url in urls:
        anonymous = client.get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
        assert page(client, clinician, url).status_code == 403
        assert page(client, outsider, url).status_code == 403
        client.logout()


def test_the_comparison_shows_the_ml_cores_paired_delta_and_delong_p_value(client, researcher, two_versions):
    weak, strong = two_versions
    url = reverse("results-compare") + f"?a={weak.pk}&b={strong.pk}"
    cells = read_cells(page(client, researcher, url).content.decode()).cells
    for cohort in COHORTS:
        chosen = sorted(
            (p for p in weak.test_predictions if cohort == "combined" or p["cohort"] == cohort),
            key=lambda p: p["image_id"],
        )
        by_image = {p["image_id"]: p for p in strong.test_predictions}
        expected = compare_predictions(
            np.array([p["level"] for p in chosen]),
            np.array([p["probabilities"] for p in chosen]),
            np.array([by_image[p["image_id"]]["probabilities"] for p in chosen]),
            np.array([p["patient"] for p in chosen]),
            LEVEL_NAMES,
            n_bootstrap=2000,
            seed=0,
        )
        for name in LEVEL_NAMES:
            level = expected["levels"][name]
            # Cells: level, AUROC A, AUROC B, ΔAUROC, DeLong p, ...
            assert cells[(cohort, name, "3")]["value"] == repr(level["delta_auroc"])
            if level["delong_p"] is None:
                assert cells[(cohort, name, "4")]["value"] == ""
                assert f"not estimable ({level['p_not_estimable']})" in cells[(cohort, name, "4")]["text"]
            else:
                assert cells[(cohort, name, "4")]["value"] == repr(level["delong_p"])
            sign = "+" if level["delta_auroc"] >= 0 else "−"
            assert f"{sign}{abs(level['delta_auroc']):.3f}" in cells[(cohort, name, "3")]["text"]


def test_the_comparison_says_so_and_shows_no_paired_test_when_test_images_differ(client, researcher):
    first = make_model_version(name="v1", predictions=make_predictions(make_test_set(), seed=1))
    other_images = make_test_set(first_image_id=5000)
    second = make_model_version(name="v2", predictions=make_predictions(other_images, seed=2))
    url = reverse("results-compare") + f"?a={first.pk}&b={second.pk}"
    response = page(client, researcher, url)
    html = response.content.decode()
    assert html.count("were not evaluated on the same test images") == len(COHORTS)
    assert "No paired test." in html
    cells = read_cells(html).cells
    for cohort in COHORTS:
        for name in LEVEL_NAMES:
            assert cells[(cohort, name, "3")]["value"] == ""
            assert cells[(cohort, name, "4")]["value"] == ""


def test_images_scored_against_different_labels_are_another_snapshot_and_not_paired(client, researcher):
    test_set = make_test_set()
    first = make_model_version(name="v1", predictions=make_predictions(test_set, seed=1))
    relabelled = [
        {**image, "level": (image["level"] + 1) % 4} if image["image_id"] == 1 else image for image in test_set
    ]
    second = make_model_version(name="v2", predictions=make_predictions(relabelled, seed=2))
    html = page(client, researcher, reverse("results-compare") + f"?a={first.pk}&b={second.pk}").content.decode()
    assert "were not evaluated on the same test images" in html
    assert first.evaluations.get().snapshot_id != second.evaluations.get().snapshot_id
    assert "Evaluate both on the current test set" in html and "data-paired-snapshot" not in html


def test_the_comparison_draws_plots_from_specs_with_their_numbers_beside_them(client, researcher, two_versions):
    weak, strong = two_versions
    html = page(client, researcher, reverse("results-compare") + f"?a={weak.pk}&b={strong.pk}").content.decode()
    for cohort in COHORTS:
        for name in LEVEL_NAMES:
            assert f'data-plot-spec="plot-{cohort}-roc-{name}"' in html
            assert f'id="plot-{cohort}-roc-{name}"' in html
        assert f'data-plot-spec="plot-{cohort}-confusion-a"' in html
        assert f'data-plot-spec="plot-{cohort}-calibration"' in html
    assert html.count("Numbers behind this plot") == len(COHORTS) * (len(LEVEL_NAMES) + 1)
    assert html.count('class="data compact confusion-table"') == len(COHORTS) * 2


def test_the_compare_pickers_list_every_version_and_unknown_ids_are_404(client, researcher, two_versions):
    weak, strong = two_versions
    html = page(client, researcher, reverse("results-compare")).content.decode()
    assert f'<option value="{weak.pk}">v1 · candidate</option>' in html
    assert page(client, researcher, reverse("results-compare") + "?a=999999&b=1").status_code == 404
    assert page(client, researcher, reverse("results-compare") + "?a=x&b=1").status_code == 404


def test_admins_get_promote_buttons_and_researchers_do_not(client, researcher, admin_user, two_versions):
    weak, strong = two_versions
    url = reverse("results-compare") + f"?a={weak.pk}&b={strong.pk}"
    promote = reverse("model-version-promote", args=[strong.pk])
    assert promote in page(client, admin_user, url).content.decode()
    assert promote not in page(client, researcher, url).content.decode()
    detail = reverse("results-version", args=[strong.pk])
    assert promote in page(client, admin_user, detail).content.decode()
    assert promote not in page(client, researcher, detail).content.decode()


def test_the_version_detail_shows_provenance_training_curve_and_promotion_history(client, researcher, admin_user):
    version = make_model_version(name="v7", backbone="random-init", created_by=researcher)
    PromotionEvent.objects.create(
        model_version=version,
        from_stage="candidate",
        to_stage="production",
        actor=admin_user,
        reason="best severe AUROC",
    )
    response = page(client, researcher, reverse("results-version", args=[version.pk]))
    html = response.content.decode()
    for text in [
        version.data_manifest_sha256,
        version.split_sha256,
        version.weights_sha256,
        "self_report_first",
        "lr=0.001",
        "torch 2.14.1",
        "0123abc",
        "best severe AUROC",
        "do not use it to assess patients",
    ]:
        assert text in html
    assert "none (NRS 0), mild (NRS 1–3), moderate (NRS 4–6), severe (NRS 7–10)" in html
    assert html.count('class="plot-canvas"') == 3 * len(COHORTS) + 2
    assert "Loss per epoch" in html and "Validation macro AUROC per epoch" in html
    # The epoch table lists the stored history: training loss 1.4 / 3 and validation loss 0.6 in epoch 3.
    assert (
        '<td class="num">3</td><td class="num">0.467</td><td class="num">0.600</td><td class="num">0.750</td>' in html
    )


def test_the_version_detail_lists_each_levels_stored_metrics_in_level_order(client, researcher):
    version = make_model_version(name="v3")
    cells = read_cells(page(client, researcher, reverse("results-version", args=[version.pk])).content.decode()).cells
    for cohort in COHORTS:
        for name in LEVEL_NAMES:
            entry = version.metrics[cohort]["levels"][name]
            assert cells[(cohort, name, "1")]["text"].startswith(f"{entry['auroc']:.3f}")
            assert cells[(cohort, name, "5")]["text"] == str(entry["support"])


def test_an_empty_registry_says_how_to_get_a_first_version(client, researcher):
    html = page(client, researcher, reverse("results")).content.decode()
    assert html.count("No model versions yet.") == len(COHORTS)
    assert "Start a training run" in html
    assert "Choose two versions." in page(client, researcher, reverse("results-compare")).content.decode()


def test_a_cohort_without_test_images_reads_as_unavailable_not_as_zero(client, researcher):
    clinical_only = [p for p in make_predictions(make_test_set(), seed=4) if p["cohort"] == "clinical"]
    version = make_model_version(name="v1", predictions=clinical_only)
    other = make_model_version(name="v2", predictions=make_predictions(make_test_set(), seed=5))
    cells = read_cells(page(client, researcher, reverse("results")).content.decode()).cells
    unavailable = version.metrics["simulated"]["unavailable"]
    assert cells[("simulated", str(version.pk), "macro_auroc")]["value"] == ""
    assert unavailable in cells[("simulated", str(version.pk), "0")]["text"]
    assert "best" not in cells[("simulated", str(version.pk), "macro_auroc")]["classes"]
    assert cells[("simulated", str(version.pk), "n_images")]["value"] == "0"
    html = page(client, researcher, reverse("results-compare") + f"?a={version.pk}&b={other.pk}").content.decode()
    snapshot_a, snapshot_b = version.evaluations.get().snapshot, other.evaluations.get().snapshot
    assert "were not evaluated on the same test images" in html
    assert f"A (v1) on test snapshot {snapshot_a.pk} (24 images)" in html
    assert f"B (v2) on test snapshot {snapshot_b.pk} (48 images)" in html
