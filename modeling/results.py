"""Reads behind the results pages: versions × metrics and the paper table.

Every number shown comes from a stored evaluation (a version scored on one test snapshot, see
modeling/evaluations.py), and every table names the snapshot of each number; nothing here
re-scores a model, so the page, the exports and the API can never drift from the registry. The
paired comparison of two versions lives in modeling/comparisons.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from modeling.models import Evaluation, ModelVersion, TestSnapshot
from modeling.results_estimability import (
    ZERO_WIDTH,
    format_not_estimable,
    is_zero_width,
)
from modeling.vocabulary import level_word

COHORTS = ("clinical", "simulated", "combined")
COHORT_LABELS = {
    "clinical": _("Clinical (CPD)"),
    "simulated": _("Simulated (SPD)"),
    "combined": _("Combined (CD)"),
}
# The study's dataset abbreviations: Clinical Pain Dataset, Simulated Pain Dataset, Combined.
DATASET_ABBREVIATIONS = {"clinical": "CPD", "simulated": "SPD", "combined": "CD"}
DEFAULT_COHORT = "combined"

# The list never needs the per-image predictions or the data manifest (hundreds of kB each).
HEAVY_FIELDS = ("test_predictions", "data_manifest", "training_history")


def configured_level_names() -> list[str]:
    """Level names from PAINSITE_PAIN_LEVELS ("none:0,mild:1-3,..."), in order."""
    return [item.split(":", 1)[0].strip() for item in settings.PAINSITE_PAIN_LEVELS.split(",") if item.strip()]


def pain_level_names(version: ModelVersion) -> list[str]:
    """The version's level names; `pain_levels` holds {"name", "nrs": [low, high]} entries."""
    return [level["name"] if isinstance(level, dict) else str(level) for level in version.pain_levels or []]


def pain_level_descriptions(version: ModelVersion) -> list[str]:
    """ "mild (NRS 1–3)", as a clinician reads the levels."""
    described = []
    for level in version.pain_levels or []:
        if isinstance(level, dict) and level.get("nrs"):
            low, high = level["nrs"]
            name = level_word(level["name"])
            described.append(f"{name} (NRS {low})" if low == high else f"{name} (NRS {low}–{high})")
        else:
            described.append(level_word(level["name"]) if isinstance(level, dict) else str(level))
    return described


def trained_on_label(cohorts: Sequence[str]) -> str:
    """ "CPD-train", "SPD-train" or "CD-train" (both cohorts), as the study names its models."""
    chosen = set(cohorts)
    if chosen >= {"clinical", "simulated"}:
        return "CD-train"
    if chosen == {"simulated"}:
        return "SPD-train"
    if chosen == {"clinical"}:
        return "CPD-train"
    return "-".join(sorted(chosen)) + "-train" if chosen else gettext("unknown")


def evaluated_on_label(cohort: str) -> str:
    return f"{DATASET_ABBREVIATIONS.get(cohort, cohort)}-test"


def format_number(value: float | None, digits: int = 3) -> str:
    return gettext("n/a") if value is None else f"{value:.{digits}f}"


def format_interval(ci: Sequence[float] | None, dash: str = "–", digits: int = 3) -> str:
    if not ci:
        return ""
    if is_zero_width(ci):
        return format_not_estimable(ZERO_WIDTH)
    return f"{ci[0]:.{digits}f}{dash}{ci[1]:.{digits}f}"


def format_p_value(p: float | None) -> str:
    if p is None:
        return gettext("n/a")
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def cohort_metrics(source: ModelVersion | Evaluation | None, cohort: str) -> dict[str, Any]:
    """The stored metrics of one cohort, of an evaluation (or a version's training-time ones);
    a cohort never evaluated reads as unavailable."""
    found = (source.metrics or {}).get(cohort) if source is not None else None
    if not found:
        return {"n_images": 0, "n_patients": 0, "unavailable": "not evaluated on this cohort"}
    return found


def level_metrics(metrics: dict[str, Any], name: str) -> dict[str, Any]:
    """One level's entry of a cohort's metrics ({} when the level is absent)."""
    return metrics.get("levels", {}).get(name, {})


def is_available(metrics: dict[str, Any]) -> bool:
    return bool(metrics.get("n_images")) and not metrics.get("unavailable")


# ---------------------------------------------------------------------------------------------
# Versions × metrics


def versions_for_results(*, stage: str = "") -> QuerySet[ModelVersion]:
    versions = ModelVersion.objects.select_related("created_by").defer(*HEAVY_FIELDS)
    if stage:
        versions = versions.filter(stage=stage)
    return versions


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    group: str
    # Counts describe the test set; only scores compete for "best".
    is_score: bool = True


@dataclass
class Cell:
    value: float | None
    ci: list[float] | None = None
    note: str = ""
    ci_note: str = ""  # why there is no interval
    best: bool = False
    column: str = ""

    @property
    def text(self) -> str:
        if self.value is None:
            return gettext("n/a")
        if isinstance(self.value, int):
            return str(self.value)
        return format_number(self.value)

    @property
    def ci_text(self) -> str:
        if self.ci or self.value is None:
            return format_interval(self.ci)
        return format_not_estimable(self.ci_note)

    @property
    def sort_value(self) -> str:
        # Full precision, so sorting and checks see the stored number, not the rounded text.
        return "" if self.value is None else repr(self.value)


@dataclass
class Row:
    version: ModelVersion
    cells: list[Cell]
    unavailable: str = ""
    # The evaluation the numbers come from, and whether it is on the table's snapshot: only
    # rows scored on the same images compete for "best".
    evaluation: Evaluation | None = None
    comparable: bool = True

    @property
    def trained_on(self) -> str:
        return trained_on_label(self.version.cohorts)


@dataclass
class ResultsTable:
    cohort: str
    label: str
    level_names: list[str]
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)

    @property
    def column_groups(self) -> list[tuple[str, int]]:
        groups: list[tuple[str, int]] = []
        for column in self.columns:
            if groups and groups[-1][0] == column.group:
                groups[-1] = (column.group, groups[-1][1] + 1)
            else:
                groups.append((column.group, 1))
        return groups


def level_names_of(versions: Iterable[ModelVersion]) -> list[str]:
    """The union of the versions' level names in first-seen order (normally the configured four)."""
    names: list[str] = []
    for version in versions:
        for cohort in COHORTS:
            for name in cohort_metrics(version, cohort).get("level_names", []):
                if name not in names:
                    names.append(name)
    return names or configured_level_names()


def table_columns(level_names: Sequence[str]) -> list[Column]:
    auroc, f1 = gettext("AUROC (95% CI)"), gettext("F1 (95% CI)")
    columns = [Column(f"auroc:{name}", level_word(name), auroc) for name in level_names]
    columns.append(Column("macro_auroc", level_word("macro"), auroc))
    columns += [Column(f"f1:{name}", level_word(name), f1) for name in level_names]
    columns.append(Column("macro_f1", level_word("macro"), f1))
    columns.append(Column("kappa_quadratic", gettext("κ (quadratic)"), gettext("Agreement")))
    test_set = gettext("Test set")
    columns.append(Column("n_images", gettext("images"), test_set, is_score=False))
    columns.append(Column("n_patients", gettext("patients"), test_set, is_score=False))
    return columns


def metric_cell(metrics: dict[str, Any], key: str) -> Cell:
    if not is_available(metrics):
        if key in ("n_images", "n_patients"):
            return Cell(metrics.get(key, 0))
        return Cell(None, note=metrics.get("unavailable", "not evaluated"))
    kind, _, level = key.partition(":")
    if kind == "auroc":
        entry = metrics.get("levels", {}).get(level)
        if entry is None:
            return Cell(None, note="level not in this version")
        return Cell(
            entry.get("auroc"),
            entry.get("ci"),
            note=entry.get("auroc_unavailable") or "",
            ci_note=entry.get("ci_not_estimable") or "",
        )
    if kind == "f1":
        entry = metrics.get("levels", {}).get(level)
        if entry is None:
            return Cell(None, note="level not in this version")
        if not entry.get("support"):
            return Cell(None, note="no case of this level in the test set")
        return Cell(entry.get("f1"), entry.get("f1_ci"), ci_note=entry.get("f1_ci_not_estimable") or "")
    if key == "macro_auroc":
        return Cell(
            metrics.get("macro_auroc"),
            metrics.get("macro_auroc_ci"),
            ci_note=metrics.get("macro_auroc_ci_not_estimable") or "",
        )
    if key == "macro_f1":
        return Cell(
            metrics.get("macro_f1"), metrics.get("macro_f1_ci"), ci_note=metrics.get("macro_f1_ci_not_estimable") or ""
        )
    return Cell(metrics.get(key))


def mark_best(rows: Sequence[Row], columns: Sequence[Column]) -> None:
    """Mark the highest score in each column among the rows scored on the table's snapshot; ties
    at the displayed precision are all marked, so two cells that read the same never disagree."""
    rows = [row for row in rows if row.comparable]
    for index, column in enumerate(columns):
        if not column.is_score:
            continue
        values = [row.cells[index].value for row in rows if row.cells[index].value is not None]
        if len(values) < 2:
            continue
        best = round(max(values), 3)
        for row in rows:
            cell = row.cells[index]
            cell.best = cell.value is not None and round(cell.value, 3) == best


def results_table(
    versions: Sequence[ModelVersion],
    cohort: str,
    *,
    evaluations: dict[int, Evaluation] | None = None,
    snapshot: TestSnapshot | None = None,
) -> ResultsTable:
    """Without `evaluations`, each version's training-time metrics; with them (version id ->
    evaluation), those, with "best" only among versions evaluated on `snapshot`."""
    level_names = level_names_of(versions)
    columns = table_columns(level_names)
    table = ResultsTable(cohort=cohort, label=COHORT_LABELS[cohort], level_names=level_names, columns=columns)
    for version in versions:
        evaluation = evaluations.get(version.pk) if evaluations is not None else None
        metrics = cohort_metrics(evaluation if evaluations is not None else version, cohort)
        cells = [metric_cell(metrics, column.key) for column in columns]
        for cell, column in zip(cells, columns, strict=True):
            cell.column = column.key
        unavailable = "" if is_available(metrics) else metrics.get("unavailable", "not evaluated")
        comparable = snapshot is None or (evaluation is not None and evaluation.snapshot_id == snapshot.pk)
        table.rows.append(Row(version, cells, unavailable, evaluation=evaluation, comparable=comparable))
    mark_best(table.rows, columns)
    return table


def results_tables(versions: Sequence[ModelVersion], **chosen: Any) -> list[ResultsTable]:
    return [results_table(versions, cohort, **chosen) for cohort in COHORTS]
