"""Reads behind the results pages: versions × metrics, the paper table, paired comparisons.

Every number shown comes from what a ModelVersion stored when it was evaluated (its `metrics`
and `test_predictions`); nothing here re-scores a model, so the page, the exports and the API
can never drift from the registry. The one computation done here is the paired comparison of
two versions, which needs both versions' predictions at once; it calls the ML core's
`compare_predictions` and is cached, since model versions never change.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import QuerySet

from modeling.ml.metrics import compare_predictions
from modeling.models import ModelVersion, Stage
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

COMPARISON_RESAMPLES = 2000
COMPARISON_SEED = 0
# Bump when the comparison's output changes shape, so cached entries from before are not reused.
COMPARISON_CACHE_VERSION = 1
COMPARISON_CACHE_SECONDS = 7 * 24 * 3600

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


def cohort_metrics(version: ModelVersion, cohort: str) -> dict[str, Any]:
    """The stored metrics of one cohort; a cohort never evaluated reads as unavailable."""
    found = (version.metrics or {}).get(cohort)
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
        return Cell(entry.get("auroc"), entry.get("ci"), note=entry.get("auroc_unavailable") or "",
                    ci_note=entry.get("ci_not_estimable") or "")
    if kind == "f1":
        entry = metrics.get("levels", {}).get(level)
        if entry is None:
            return Cell(None, note="level not in this version")
        if not entry.get("support"):
            return Cell(None, note="no case of this level in the test set")
        return Cell(entry.get("f1"), entry.get("f1_ci"), ci_note=entry.get("f1_ci_not_estimable") or "")
    if key == "macro_auroc":
        return Cell(metrics.get("macro_auroc"), metrics.get("macro_auroc_ci"),
                    ci_note=metrics.get("macro_auroc_ci_not_estimable") or "")
    if key == "macro_f1":
        return Cell(metrics.get("macro_f1"), metrics.get("macro_f1_ci"),
                    ci_note=metrics.get("macro_f1_ci_not_estimable") or "")
    return Cell(metrics.get(key))


def mark_best(rows: Sequence[Row], columns: Sequence[Column]) -> None:
    """Mark the highest score in each column; ties at the displayed precision are all marked, so
    two cells that read the same never disagree about which is best."""
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


def results_table(versions: Sequence[ModelVersion], cohort: str) -> ResultsTable:
    level_names = level_names_of(versions)
    columns = table_columns(level_names)
    table = ResultsTable(cohort=cohort, label=COHORT_LABELS[cohort], level_names=level_names, columns=columns)
    for version in versions:
        metrics = cohort_metrics(version, cohort)
        cells = [metric_cell(metrics, column.key) for column in columns]
        for cell, column in zip(cells, columns, strict=True):
            cell.column = column.key
        unavailable = "" if is_available(metrics) else metrics.get("unavailable", "not evaluated")
        table.rows.append(Row(version=version, cells=cells, unavailable=unavailable))
    mark_best(table.rows, columns)
    return table


def results_tables(versions: Sequence[ModelVersion]) -> list[ResultsTable]:
    return [results_table(versions, cohort) for cohort in COHORTS]


# ---------------------------------------------------------------------------------------------
# Paper table: rows are trained-on × evaluated-on, as a study reports them.


@dataclass
class PaperRow:
    version: ModelVersion
    trained_on: str
    evaluated_on: str
    cohort: str
    metrics: dict[str, Any]


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


def paper_rows(versions: Sequence[ModelVersion]) -> list[PaperRow]:
    rows = []
    for version in versions:
        for cohort in COHORTS:
            metrics = cohort_metrics(version, cohort)
            if is_available(metrics):
                rows.append(
                    PaperRow(version, trained_on_label(version.cohorts), evaluated_on_label(cohort), cohort, metrics)
                )
    return rows


def _level(metrics: dict[str, Any], name: str) -> dict[str, Any]:
    return metrics.get("levels", {}).get(name, {})


def paper_csv(rows: Sequence[PaperRow], level_names: Sequence[str]) -> str:
    """Machine-readable: one column per number, full stored precision."""
    header = ["trained_on", "evaluated_on", "version", "n_images", "n_patients"]
    for name in level_names:
        header += [f"{name}_auroc", f"{name}_auroc_ci_low", f"{name}_auroc_ci_high", f"{name}_f1"]
    header += ["macro_auroc", "macro_auroc_ci_low", "macro_auroc_ci_high", "macro_f1"]
    header += ["macro_auroc_n_levels", "macro_f1_n_levels", "ci_not_estimable"]
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
    macro = {"auroc": m.get("macro_auroc"), "ci": m.get("macro_auroc_ci"),
             "ci_not_estimable": m.get("macro_auroc_ci_not_estimable")}
    auroc_levels, f1_levels = macro_level_counts(m)
    macro_auroc = _auroc_text(macro, dash)
    cells += [f"{macro_auroc}; {auroc_levels} levels" if macro["auroc"] is not None else macro_auroc,
              f"{format_number(m.get('macro_f1'))}; {f1_levels} levels"]
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
    return "\n".join(lines) + "\n"


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
    level_heads = " & ".join(
        rf"\multicolumn{{2}}{{c}}{{{latex_escape(name)}}}" for name in [*level_names, "macro"]
    )
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
    return "\n".join(lines) + "\n"


PAPER_FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv", paper_csv),
    "md": ("text/markdown; charset=utf-8", "md", paper_markdown),
    "tex": ("application/x-tex; charset=utf-8", "tex", paper_latex),
}


# ---------------------------------------------------------------------------------------------
# Paired comparison of two versions on their stored test predictions


def _predictions_by_image(version: ModelVersion, cohort: str) -> dict[int, dict[str, Any]]:
    return {
        p["image_id"]: p
        for p in version.test_predictions or []
        if cohort == "combined" or p.get("cohort") == cohort
    }


def _side(version: ModelVersion, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": version.pk,
        "name": version.name,
        "stage": version.stage,
        "backbone": version.backbone,
        "n_images": metrics.get("n_images", 0),
        "n_patients": metrics.get("n_patients", 0),
        "unavailable": None if is_available(metrics) else metrics.get("unavailable", "not evaluated"),
    }


def _same_images_problem(a: dict[int, dict], b: dict[int, dict], names_a: list, names_b: list) -> str | None:
    if not a or not b:
        return "At least one of the two versions has no stored test predictions for this cohort."
    if set(a) != set(b):
        shared = len(set(a) & set(b))
        return (
            f"The two versions were not evaluated on the same test images (A: {len(a)}, B: {len(b)}, "
            f"shared: {shared}). A paired test needs identical test sets, so no ΔAUROC confidence "
            "interval or DeLong p-value is shown; the per-version intervals below are not a comparison."
        )
    if names_a != names_b:
        return "The two versions use different pain levels, so their predictions cannot be paired."
    for image_id, prediction in a.items():
        other = b[image_id]
        if prediction["level"] != other["level"] or prediction["patient"] != other["patient"]:
            return (
                "The two versions scored the same test images against different reference labels "
                "(a label rule or label changed between them), so no paired test is shown."
            )
    return None


def compare_versions(a: ModelVersion, b: ModelVersion, cohort: str) -> dict[str, Any]:
    """The numbers the comparison page and API show for one cohort. JSON-ready.

    Per-version AUROC/CI and F1 are the stored ones; ΔAUROC, its paired bootstrap CI, the
    DeLong p-value and ΔF1 come from `compare_predictions` on the images both versions scored,
    in image-id order, and only when both scored exactly the same images with the same labels.
    """
    metrics_a, metrics_b = cohort_metrics(a, cohort), cohort_metrics(b, cohort)
    level_names = list(metrics_a.get("level_names") or pain_level_names(a) or configured_level_names())
    problem, paired = paired_test(a, b, cohort, level_names)
    levels = {}
    for name in level_names:
        entry_a, entry_b = _level(metrics_a, name), _level(metrics_b, name)
        pair = paired["levels"][name] if paired else {}
        levels[name] = {
            "auroc_a": entry_a.get("auroc"),
            "ci_a": entry_a.get("ci"),
            "ci_a_not_estimable": entry_a.get("ci_not_estimable"),
            "auroc_b": entry_b.get("auroc"),
            "ci_b": entry_b.get("ci"),
            "ci_b_not_estimable": entry_b.get("ci_not_estimable"),
            "delta_auroc": pair.get("delta_auroc"),
            "delta_ci": pair.get("delta_ci"),
            "delta_ci_not_estimable": pair.get("ci_not_estimable"),
            "delong_p": pair.get("delong_p"),
            "p_not_estimable": pair.get("p_not_estimable"),
            # A level without a case in the test set has no F1 (its stored 0 means nothing).
            "f1_a": entry_a.get("f1") if entry_a.get("support") else None,
            "f1_b": entry_b.get("f1") if entry_b.get("support") else None,
            "delta_f1": pair.get("delta_f1") if entry_a.get("support") else None,
            "unavailable": pair.get("unavailable") or entry_a.get("auroc_unavailable") or entry_b.get("auroc_unavailable"),
        }
    macro = paired["macro"] if paired else {}
    return {
        "cohort": cohort,
        "cohort_label": COHORT_LABELS[cohort],
        "a": _side(a, metrics_a),
        "b": _side(b, metrics_b),
        "level_names": level_names,
        "same_test_images": problem is None,
        "statement": problem,
        "n_images": paired["n_images"] if paired else None,
        "n_patients": paired["n_patients"] if paired else None,
        "ci_not_estimable": paired.get("ci_not_estimable") if paired else None,
        "p_value_method": paired.get("p_value_method") if paired else None,
        "levels": levels,
        "macro": {
            "auroc_a": metrics_a.get("macro_auroc"),
            "ci_a": metrics_a.get("macro_auroc_ci"),
            "ci_a_not_estimable": metrics_a.get("macro_auroc_ci_not_estimable"),
            "auroc_b": metrics_b.get("macro_auroc"),
            "ci_b": metrics_b.get("macro_auroc_ci"),
            "ci_b_not_estimable": metrics_b.get("macro_auroc_ci_not_estimable"),
            "delta_auroc": macro.get("delta_auroc"),
            "delta_ci": macro.get("delta_ci"),
            "delta_ci_not_estimable": macro.get("ci_not_estimable"),
            "n_levels": len(macro.get("levels") or []) if paired else None,
            "f1_a": metrics_a.get("macro_f1"),
            "f1_b": metrics_b.get("macro_f1"),
            "delta_f1": (metrics_b["macro_f1"] - metrics_a["macro_f1"])
            if paired and metrics_a.get("macro_f1") is not None and metrics_b.get("macro_f1") is not None
            else None,
        },
        "bootstrap": paired["bootstrap"] if paired else None,
    }


def paired_test(
    a: ModelVersion, b: ModelVersion, cohort: str, level_names: list[str]
) -> tuple[str | None, dict[str, Any] | None]:
    """(why no paired test is possible, or None; compare_predictions' result, or None).

    Cached: it needs both versions' predictions and 2,000 paired resamples, and the inputs never
    change (model versions are immutable). The stage, which does change, is not part of it.
    """
    # The weights digests make the key name the models themselves, not only their row ids.
    key = (
        f"painsite:compare:v{COMPARISON_CACHE_VERSION}:{cohort}:"
        f"{a.pk}:{a.weights_sha256}:{b.pk}:{b.weights_sha256}"
    )
    found = cache.get(key)
    if found is None:
        predictions_a, predictions_b = _predictions_by_image(a, cohort), _predictions_by_image(b, cohort)
        names_b = cohort_metrics(b, cohort).get("level_names") or pain_level_names(b) or configured_level_names()
        problem = _same_images_problem(predictions_a, predictions_b, level_names, list(names_b))
        paired = None if problem else _paired_comparison(predictions_a, predictions_b, level_names)
        found = (problem, paired)
        cache.set(key, found, COMPARISON_CACHE_SECONDS)
    return found


def _paired_comparison(
    predictions_a: dict[int, dict[str, Any]], predictions_b: dict[int, dict[str, Any]], level_names: list[str]
) -> dict[str, Any]:
    """compare_predictions on both versions' predictions, aligned by image id."""
    image_ids = sorted(predictions_a)
    return compare_predictions(
        np.asarray([predictions_a[i]["level"] for i in image_ids]),
        np.asarray([predictions_a[i]["probabilities"] for i in image_ids], dtype=float),
        np.asarray([predictions_b[i]["probabilities"] for i in image_ids], dtype=float),
        np.asarray([predictions_a[i]["patient"] for i in image_ids]),
        level_names,
        n_bootstrap=COMPARISON_RESAMPLES,
        seed=COMPARISON_SEED,
    )


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
