"""/results/paper/: the study-style table and its CSV, Markdown and LaTeX downloads."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from modeling.models import Stage
from modeling.paper_table import latex_escape
from tests.modeling.factories import LEVEL_NAMES, make_model_version, make_predictions, make_test_set

pytestmark = pytest.mark.django_db
N_COLUMNS = 4 + 2 * (len(LEVEL_NAMES) + 1)


@pytest.fixture
def study_versions():
    """A clinical-only model (CPD-train) and one trained on both cohorts (CD-train)."""
    # Enough patients for the severe level's intervals (5 with a severe image, 10 in the cohort).
    test_set = make_test_set(patients_per_cohort=20, images_per_patient=3)
    cpd = make_model_version(name="v1", predictions=make_predictions(test_set, seed=1), cohorts=["clinical"])
    cd = make_model_version(
        name="v2", predictions=make_predictions(test_set, skill=2.0, seed=2), cohorts=["clinical", "simulated"]
    )
    return cpd, cd


def download(client, user, export: str, **query) -> str:
    client.force_login(user)
    response = client.get(reverse("results-paper"), {**query, "format": export})
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="painsite-results.{export}"'
    return response.content.decode()


def test_the_csv_has_the_documented_header_and_the_stored_numbers_at_full_precision(client, researcher, study_versions):
    cpd, cd = study_versions
    rows = list(csv.DictReader(io.StringIO(download(client, researcher, "csv"))))
    header = list(rows[0])
    assert header[:5] == ["trained_on", "evaluated_on", "version", "n_images", "n_patients"]
    assert header[5:9] == ["none_auroc", "none_auroc_ci_low", "none_auroc_ci_high", "none_f1"]
    assert header[-12:-8] == ["macro_auroc", "macro_auroc_ci_low", "macro_auroc_ci_high", "macro_f1"]
    assert header[-8:-5] == ["macro_auroc_n_levels", "macro_f1_n_levels", "ci_not_estimable"]
    assert header[-1] == "backbone"
    assert header[-5:-1] == [
        "test_snapshot",
        "test_snapshot_sha256",
        "train_targets_self_report",
        "train_targets_observer_median",
    ]
    assert [(row["trained_on"], row["evaluated_on"]) for row in rows] == [
        ("CPD-train", "CPD-test"),
        ("CPD-train", "SPD-test"),
        ("CPD-train", "CD-test"),
        ("CD-train", "CPD-test"),
        ("CD-train", "SPD-test"),
        ("CD-train", "CD-test"),
    ]
    severe = cd.metrics["clinical"]["levels"]["severe"]
    row = rows[3]
    assert float(row["severe_auroc"]) == severe["auroc"]
    assert [float(row["severe_auroc_ci_low"]), float(row["severe_auroc_ci_high"])] == severe["ci"]
    assert float(row["severe_f1"]) == severe["f1"]
    assert int(row["n_images"]) == cd.metrics["clinical"]["n_images"]
    assert int(row["macro_auroc_n_levels"]) == len(cd.metrics["clinical"]["macro_auroc_levels"])
    assert int(row["macro_f1_n_levels"]) == len(cd.metrics["clinical"]["macro_f1_levels"])
    snapshot = cd.evaluations.get().snapshot
    assert (int(row["test_snapshot"]), row["test_snapshot_sha256"]) == (snapshot.pk, snapshot.sha256)


def test_the_markdown_table_has_the_same_number_of_columns_on_every_line(client, researcher, study_versions):
    lines = [line for line in download(client, researcher, "md").strip().splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 6
    counts = {len(re.split(r"(?<!\\)\|", line)) - 2 for line in lines}
    assert counts == {N_COLUMNS}
    assert re.fullmatch(r"\|(---\|){3}(---:\|)+", lines[1])
    assert lines[2].startswith("| CPD-train | CPD-test | v1 |")


def latex_columns(line: str) -> int:
    """Columns a tabular row spans: cells split on unescaped &, \\multicolumn{n} counting n."""
    total = 0
    for cell in re.split(r"(?<!\\)&", line.removesuffix("\\\\").strip()):
        spanned = re.match(r"\s*\\multicolumn\{(\d+)\}", cell)
        total += int(spanned.group(1)) if spanned else 1
    return total


def test_the_latex_fragment_has_balanced_braces_and_the_right_column_count_in_every_row(
    client, researcher, study_versions
):
    tex = download(client, researcher, "tex")
    body = re.sub(r"\\[{}%&_#$]", "", tex)  # escaped characters are text, not syntax
    depth = 0
    for char in body:
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    spec = re.search(r"\\begin\{tabular\}\{([a-z]+)\}", tex).group(1)
    assert len(spec) == N_COLUMNS
    rows = [line for line in tex.splitlines() if line.rstrip().endswith("\\\\")]
    assert len(rows) == 2 + 6
    assert {latex_columns(row) for row in rows} == {N_COLUMNS}
    table, notes = tex.split("\\end{tabular}\n")
    assert all(line.startswith("\\par{\\footnotesize ") for line in notes.splitlines())
    assert "Test snapshot" in notes
    assert "95\\% CI" in tex and "--" in tex


def test_latex_escapes_characters_that_would_break_the_fragment(client, researcher):
    make_model_version(name="v3_b&c", cohorts=["simulated"])
    tex = download(client, researcher, "tex")
    assert "v3\\_b\\&c" in tex
    assert (
        latex_escape("100% {x} #1 ~ ^ \\") == r"100\% \{x\} \#1 \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )


def test_by_default_each_trained_on_dataset_shows_its_production_version_or_else_its_newest(client, researcher):
    test_set = make_test_set(patients_per_cohort=4, images_per_patient=3)
    older_production = make_model_version(
        name="v1", predictions=make_predictions(test_set, seed=1), stage=Stage.PRODUCTION
    )
    make_model_version(name="v2", predictions=make_predictions(test_set, seed=2))
    older_cd = make_model_version(
        name="v3", predictions=make_predictions(test_set, seed=3), cohorts=["clinical", "simulated"]
    )
    newest_cd = make_model_version(
        name="v4", predictions=make_predictions(test_set, seed=4), cohorts=["clinical", "simulated"]
    )
    rows = list(csv.DictReader(io.StringIO(download(client, researcher, "csv"))))
    assert {row["version"] for row in rows} == {older_production.name, newest_cd.name}
    chosen = list(csv.DictReader(io.StringIO(download(client, researcher, "csv", version=[older_cd.pk]))))
    assert {row["version"] for row in chosen} == {"v3"}


def test_the_page_shows_the_table_and_download_links(client, researcher, study_versions):
    client.force_login(researcher)
    html = client.get(reverse("results-paper")).content.decode()
    assert "severe AUROC (95% CI)" in html
    assert html.count("<tr>") == 1 + 6
    for export in ("csv", "md", "tex"):
        assert f'href="?format={export}"' in html


def test_an_unknown_format_is_refused_by_name(client, researcher, study_versions):
    client.force_login(researcher)
    response = client.get(reverse("results-paper"), {"format": "xlsx"})
    assert response.status_code == 400
    assert "csv, md, tex" in response.content.decode()


def test_a_random_init_backbone_is_flagged_in_every_export(client, researcher):
    test_set = make_test_set(patients_per_cohort=20, images_per_patient=3)
    make_model_version(
        name="v1", predictions=make_predictions(test_set, seed=1), cohorts=["clinical"], backbone="random-init"
    )
    make_model_version(
        name="v2", predictions=make_predictions(test_set, skill=2.0, seed=2), cohorts=["clinical", "simulated"]
    )
    rows = list(csv.DictReader(io.StringIO(download(client, researcher, "csv"))))
    assert {row["version"]: row["backbone"] for row in rows} == {"v1": "random-init", "v2": "vgg16-imagenet1k-v1"}
    for export in ("md", "tex"):
        text = download(client, researcher, export)
        assert "v1 (random-init backbone)" in text and "v2 (random-init backbone)" not in text
        assert "v1 was trained on a random-init backbone" in text.replace("\\", "")
