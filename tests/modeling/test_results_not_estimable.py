"""Results pages and exports show what the metrics could not estimate, with the reason."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from modeling.paper_table import PaperRow, paper_cells, paper_csv
from modeling.results import format_interval
from modeling.templatetags.results_format import signed_interval
from tests.modeling.factories import (
    LEVEL_NAMES,
    make_model_version,
    make_predictions,
    make_test_set,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def without_none_level():
    """A small test set (6 patients a cohort) with no image of level "none"."""
    test_set = [image for image in make_test_set() if image["level"] != 0]
    return make_model_version(name="v1", predictions=make_predictions(test_set, seed=3))


def test_the_version_page_shows_not_estimable_with_the_reason_and_n_a_for_a_level_without_cases(
    client, researcher, without_none_level
):
    client.force_login(researcher)
    html = client.get(reverse("results-version", args=[without_none_level.pk])).content.decode()
    clinical = without_none_level.metrics["clinical"]
    assert clinical["levels"]["none"]["support"] == 0 and clinical["levels"]["none"]["f1"] == 0.0
    row = re.search(r'<tr data-level="none">(.*?)</tr>', html, re.DOTALL).group(1)
    cells = re.findall(r'<td class="num">(.*?)</td>', row, re.DOTALL)
    assert cells[3].strip() == "n/a", "F1 of a level without cases is n/a, not 0.000"
    assert f"No intervals: {clinical['ci_not_estimable']}." in html
    assert "not estimable (too few patients for intervals: 6 test patients, at least 10 needed)" in html


def test_exports_state_the_reason_the_macro_level_counts_and_n_a_f1(without_none_level):
    metrics = without_none_level.metrics["clinical"]
    row = PaperRow(without_none_level, "CPD-train", "CPD-test", "clinical", metrics)
    cells = paper_cells(row, LEVEL_NAMES)
    assert cells[4:6] == ["n/a", "n/a"]  # none: no AUROC, and no F1 (not 0.000)
    assert cells[6].endswith("(not estimable (too few patients for intervals: 6 test patients, at least 10 needed))")
    assert cells[-2].endswith(f"; {len(metrics['macro_auroc_levels'])} levels")
    assert cells[-1].endswith(f"; {len(metrics['macro_f1_levels'])} levels")
    line = next(csv.DictReader(io.StringIO(paper_csv([row], LEVEL_NAMES))))
    assert line["none_f1"] == "" and line["mild_auroc_ci_low"] == ""
    assert line["ci_not_estimable"] == metrics["ci_not_estimable"]
    assert line["macro_auroc_n_levels"] == "3"


def test_a_zero_width_interval_stored_earlier_is_not_shown_as_valid():
    assert format_interval([0.5, 0.5]).startswith("not estimable (every bootstrap resample gave the same value")
    assert signed_interval([0.0, 0.0]).startswith("not estimable (")
    assert format_interval([0.4, 0.6]) == "0.400–0.600"
