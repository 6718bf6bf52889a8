"""Reads behind the results pages: versions × metrics and the paper table.

Every number shown comes from a stored evaluation (a version scored on one test snapshot, see
modeling/evaluations.py), and every table names the snapshot of each number; nothing here
re-scores a model, so the page, the exports and the API can never drift from the registry. The
paired comparison of two versions lives in modeling/comparisons.py.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from modeling.models import Evaluation, ModelVersion, Stage, TestSnapshot
from modeling.results_estimability import (
    ZERO_WIDTH,
    format_not_estimable,
    is_zero_width,
    macro_level_counts,
    not_estimable_summary,
)

COHORTS = ("clinical", "simulated", "combined")
COHORT_LABELS = {
    "clinical": "Clinical (CPD)",
    "simulated": "Simulated (SPD)",
    "combined": "Combined (CD)",
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
            described.append(f"{level['name']} (NRS {low})" if low == high else f"{level['name']} (NRS {low}–{high})")
        else:
            described.append(level["name"] if isinstance(level, dict) else str(level))
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
    return "-".join(sorted(chosen)) + "-train" if chosen else "unknown"


def evaluated_on_label(cohort: str) -> str:
    return f"{DATASET_ABBREVIATIONS.get(cohort, cohort)}-test"


def format_number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_interval(ci: Sequence[float] | None, dash: str = "–", digits: int = 3) -> str:
    if not ci:
        return ""
    if is_zero_width(ci):
        return format_not_estimable(ZERO_WIDTH)
    return f"{ci[0]:.{digits}f}{dash}{ci[1]:.{digits}f}"


def format_p_value(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def cohort_metrics(source: ModelVersion | Evaluation | None, cohort: str) -> dict[str, Any]:
    """The stored metrics of one cohort, of an evaluation (or a version's training-time ones);
    a cohort never evaluated reads as unavailable."""
    found = (source.metrics or {}).get(cohort) if source is not None else None
    if not found:
        return {"n_images": 0, "n_patients": 0, "unavailable": "not evaluated on this cohort"}
    return found


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
            return "n/a"
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
    columns = [Column(f"auroc:{name}", name, "AUROC (95% CI)") for name in level_names]
    columns.append(Column("macro_auroc", "macro", "AUROC (95% CI)"))
    columns += [Column(f"f1:{name}", name, "F1 (95% CI)") for name in level_names]
    columns.append(Column("macro_f1", "macro", "F1 (95% CI)"))
    columns.append(Column("kappa_quadratic", "κ (quadratic)", "Agreement"))
    columns.append(Column("n_images", "images", "Test set", is_score=False))
    columns.append(Column("n_patients", "patients", "Test set", is_score=False))
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


# ---------------------------------------------------------------------------------------------
# Paper table: rows are trained-on × evaluated-on, as a study reports them.


@dataclass
class PaperRow:
    version: ModelVersion
    trained_on: str
    evaluated_on: str
    cohort: str
    metrics: dict[str, Any]
    snapshot: TestSnapshot | None = None
    # Where the version's training targets came from, per split (data_manifest.target_sources).
    target_sources: dict[str, dict[str, int]] | None = None


PAPER_ROW_ORDER = ("CPD-train", "SPD-train", "CD-train")


def default_paper_versions(versions: Sequence[ModelVersion]) -> list[ModelVersion]:
    """One version per trained-on dataset: the production one if it is that kind, else the newest."""
    ranked = sorted(versions, key=lambda v: (v.stage != Stage.PRODUCTION, -v.created_at.timestamp(), -v.pk))
    chosen: dict[str, ModelVersion] = {}
    for version in ranked:
        chosen.setdefault(trained_on_label(version.cohorts), version)
    return [chosen[label] for label in sorted(chosen, key=_paper_row_rank)]


def _paper_row_rank(label: str) -> tuple[int, str]:
    return (PAPER_ROW_ORDER.index(label) if label in PAPER_ROW_ORDER else len(PAPER_ROW_ORDER), label)


def paper_rows(versions: Sequence[ModelVersion], evaluations: dict[int, Evaluation]) -> list[PaperRow]:
    """Rows from each version's evaluation (version id -> evaluation, its snapshot loaded)."""
    rows = []
    for version in versions:
        evaluation = evaluations.get(version.pk)
        for cohort in COHORTS:
            metrics = cohort_metrics(evaluation, cohort)
            if is_available(metrics):
                rows.append(
                    PaperRow(
                        version,
                        trained_on_label(version.cohorts),
                        evaluated_on_label(cohort),
                        cohort,
                        metrics,
                        snapshot=evaluation.snapshot,
                    )
                )
    return rows


def paper_footnotes(rows: Sequence[PaperRow]) -> list[str]:
    """Which test snapshot each row was scored on, and where each version's training targets
    came from: a table is only comparable with another on the same snapshot."""
    notes = []
    snapshots: dict[int, tuple[TestSnapshot, list[str]]] = {}
    for row in rows:
        names = snapshots.setdefault(row.snapshot.pk, (row.snapshot, []))[1]
        if row.version.name not in names:
            names.append(row.version.name)
    for snapshot, names in snapshots.values():
        notes.append(
            f"Test snapshot {snapshot.pk} (sha256 {snapshot.sha256[:12]}, {snapshot.n_images} images from "
            f"{snapshot.n_patients} patients, frozen {snapshot.created_at:%Y-%m-%d %H:%M} UTC): {', '.join(names)}."
        )
    seen = set()
    for row in rows:
        if row.version.pk in seen:
            continue
        seen.add(row.version.pk)
        train = (row.target_sources or {}).get("train")
        if not train:
            notes.append(f"Training targets of {row.version.name}: sources not recorded (trained before they were).")
            continue
        parts = [f"{count} {TARGET_SOURCE_LABELS.get(source, source)}" for source, count in sorted(train.items())]
        notes.append(
            f"Training targets of {row.version.name} (label rule {row.version.label_rule}): {', '.join(parts)}."
        )
    return notes


TARGET_SOURCE_LABELS = {"self_report": "self-report", "observer_median": "observer median", "unknown": "unrecorded"}


def _level(metrics: dict[str, Any], name: str) -> dict[str, Any]:
    return metrics.get("levels", {}).get(name, {})


def paper_csv(rows: Sequence[PaperRow], level_names: Sequence[str]) -> str:
    """Machine-readable: one column per number, full stored precision."""
    header = ["trained_on", "evaluated_on", "version", "n_images", "n_patients"]
    for name in level_names:
        header += [f"{name}_auroc", f"{name}_auroc_ci_low", f"{name}_auroc_ci_high", f"{name}_f1"]
    header += ["macro_auroc", "macro_auroc_ci_low", "macro_auroc_ci_high", "macro_f1"]
    header += ["macro_auroc_n_levels", "macro_f1_n_levels", "ci_not_estimable"]
    header += ["test_snapshot", "test_snapshot_sha256", "train_targets_self_report", "train_targets_observer_median"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        m = row.metrics
        line: list[Any] = [row.trained_on, row.evaluated_on, row.version.name, m["n_images"], m["n_patients"]]
        for name in level_names:
            entry = _level(m, name)
            ci = entry.get("ci") if not is_zero_width(entry.get("ci")) else None
            ci = ci or ["", ""]
            f1 = entry.get("f1") if entry.get("support") else None  # no case: no F1, not 0
            line += [_csv_value(entry.get("auroc")), _csv_value(ci[0]), _csv_value(ci[1]), _csv_value(f1)]
        ci = m.get("macro_auroc_ci") if not is_zero_width(m.get("macro_auroc_ci")) else None
        ci = ci or ["", ""]
        line += [_csv_value(m.get("macro_auroc")), _csv_value(ci[0]), _csv_value(ci[1]), _csv_value(m.get("macro_f1"))]
        line += [*macro_level_counts(m), not_estimable_summary(m, level_names)]
        train = (row.target_sources or {}).get("train") or {}
        line += [row.snapshot.pk, row.snapshot.sha256]
        line += [_csv_value(train.get("self_report")), _csv_value(train.get("observer_median"))]
        writer.writerow(line)
    return out.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _auroc_text(entry: dict[str, Any], dash: str) -> str:
    auroc = entry.get("auroc")
    if auroc is None:
        return "n/a"
    interval = format_interval(entry.get("ci"), dash=dash)
    if not interval and entry.get("ci_not_estimable"):
        return f"{auroc:.3f} ({format_not_estimable(entry['ci_not_estimable'])})"
    return f"{auroc:.3f} ({interval})" if interval else f"{auroc:.3f}"


def paper_cells(row: PaperRow, level_names: Sequence[str], dash: str = "–") -> list[str]:
    m = row.metrics
    cells = [row.trained_on, row.evaluated_on, row.version.name, f"{m['n_images']} ({m['n_patients']})"]
    for name in level_names:
        entry = _level(m, name)
        cells += [_auroc_text(entry, dash), format_number(entry.get("f1")) if entry.get("support") else "n/a"]
    macro = {
        "auroc": m.get("macro_auroc"),
        "ci": m.get("macro_auroc_ci"),
        "ci_not_estimable": m.get("macro_auroc_ci_not_estimable"),
    }
    auroc_levels, f1_levels = macro_level_counts(m)
    macro_auroc = _auroc_text(macro, dash)
    cells += [
        f"{macro_auroc}; {auroc_levels} levels" if macro["auroc"] is not None else macro_auroc,
        f"{format_number(m.get('macro_f1'))}; {f1_levels} levels",
    ]
    return cells


def paper_header(level_names: Sequence[str]) -> list[str]:
    header = ["Trained on", "Evaluated on", "Version", "Images (patients)"]
    for name in [*level_names, "macro"]:
        header += [f"{name} AUROC (95% CI)", f"{name} F1"]
    return header


def paper_markdown(rows: Sequence[PaperRow], level_names: Sequence[str]) -> str:
    header = paper_header(level_names)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|"]
    for row in rows:
        cells = [cell.replace("|", "\\|") for cell in paper_cells(row, level_names)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"{note}  " for note in paper_footnotes(rows)) + "\n"


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(char, char) for char in text)


def paper_latex(rows: Sequence[PaperRow], level_names: Sequence[str]) -> str:
    """A tabular fragment for \\input{} inside a table environment; needs no extra packages."""
    level_heads = " & ".join(rf"\multicolumn{{2}}{{c}}{{{latex_escape(name)}}}" for name in [*level_names, "macro"])
    sub_heads = " & ".join(["AUROC (95\\% CI) & F1"] * (len(level_names) + 1))
    lines = [
        "% Per-level AUROC with 95% patient-cluster bootstrap CI, and F1. Generated by PainSite.",
        r"\begin{tabular}{" + "lllr" + "rr" * (len(level_names) + 1) + "}",
        r"\hline",
        rf"Trained on & Evaluated on & Version & Images (patients) & {level_heads} \\",
        rf" & & & & {sub_heads} \\",
        r"\hline",
    ]
    for row in rows:
        cells = [latex_escape(cell) for cell in paper_cells(row, level_names, dash="--")]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    lines += [rf"\par{{\footnotesize {latex_escape(note)}}}" for note in paper_footnotes(rows)]
    return "\n".join(lines) + "\n"


PAPER_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv", paper_csv),
    "md": ("text/markdown; charset=utf-8", "md", paper_markdown),
    "tex": ("application/x-tex; charset=utf-8", "tex", paper_latex),
}


# ---------------------------------------------------------------------------------------------
# Plot data: what static/js/plots.js draws and what the tables beside each plot list.


def level_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-level metrics in level order (PostgreSQL's jsonb does not keep key order)."""
    return [{"level": name, **_level(metrics, name)} for name in metrics.get("level_names", [])]


def roc_curves(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    curves = []
    for name in metrics.get("level_names", []):
        entry = _level(metrics, name)
        roc = entry.get("roc") or {}
        curves.append(
            {
                "level": name,
                "auroc": entry.get("auroc"),
                "ci": entry.get("ci"),
                "unavailable": entry.get("auroc_unavailable"),
                "fpr": roc.get("fpr", []),
                "tpr": roc.get("tpr", []),
            }
        )
    return curves


def confusion(metrics: dict[str, Any]) -> dict[str, Any]:
    """Counts (rows: true level, columns: predicted level) and the same rows as fractions."""
    counts = metrics.get("confusion_matrix") or []
    normalised = []
    for row in counts:
        total = sum(row)
        normalised.append([count / total if total else None for count in row])
    return {"labels": metrics.get("level_names", []), "counts": counts, "row_normalised": normalised}


def calibration(metrics: dict[str, Any]) -> dict[str, Any]:
    found = metrics.get("calibration") or {}
    return {"ece": found.get("ece"), "brier": found.get("brier"), "bins": found.get("bins", [])}


def training_curve(version: ModelVersion) -> list[dict[str, Any]]:
    return [
        {
            "epoch": entry.get("epoch"),
            "loss": entry.get("loss"),
            "val_loss": entry.get("val_loss"),
            "val_macro_auroc": entry.get("val_macro_auroc"),
        }
        for entry in version.training_history or []
    ]
