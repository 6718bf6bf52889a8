"""The paper table: the reference study's layout (per level AUROC with 95% CI and F1, per trained-on
and evaluated-on data set) as CSV, Markdown and LaTeX, naming the test snapshot of every number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext

from modeling.models import Evaluation, ModelVersion, Stage, TestSnapshot
from modeling.results import (
    COHORTS,
    cohort_metrics,
    evaluated_on_label,
    format_interval,
    format_number,
    is_available,
    level_metrics,
    trained_on_label,
)
from modeling.results_estimability import (
    format_not_estimable,
    is_zero_width,
    macro_level_counts,
    not_estimable_summary,
)
from modeling.vocabulary import level_word, target_source_word


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
        if row.snapshot is None:
            continue
        names = snapshots.setdefault(row.snapshot.pk, (row.snapshot, []))[1]
        if row.version.name not in names:
            names.append(row.version.name)
    for snapshot, names in snapshots.values():
        notes.append(
            gettext(
                "Test snapshot %(id)s (sha256 %(sha)s, %(images)s images from %(patients)s patients, frozen %(frozen)s "
                "UTC): %(versions)s."
            )
            % {
                "id": snapshot.pk,
                "sha": snapshot.sha256[:12],
                "images": snapshot.n_images,
                "patients": snapshot.n_patients,
                "frozen": f"{snapshot.created_at:%Y-%m-%d %H:%M}",
                "versions": ", ".join(names),
            }
        )
    seen = set()
    for row in rows:
        if row.version.pk in seen:
            continue
        seen.add(row.version.pk)
        if row.version.is_random_init:
            notes.append(
                gettext(
                    "%(name)s was trained on a random-init backbone (no ImageNet weights): its numbers are not "
                    "comparable with an ImageNet-pretrained VGG16's."
                )
                % {"name": row.version.name}
            )
        train = (row.target_sources or {}).get("train")
        if not train:
            notes.append(
                gettext("Training targets of %(name)s: sources not recorded (trained before they were).")
                % {"name": row.version.name}
            )
            continue
        parts = [f"{count} {target_source_word(source)}" for source, count in sorted(train.items())]
        notes.append(
            gettext("Training targets of %(name)s (label rule %(rule)s): %(sources)s.")
            % {"name": row.version.name, "rule": row.version.label_rule, "sources": ", ".join(parts)}
        )
    return notes


def paper_csv(rows: Sequence[PaperRow], level_names: Sequence[str]) -> str:
    """Machine-readable: one column per number, full stored precision."""
    header = ["trained_on", "evaluated_on", "version", "n_images", "n_patients"]
    for name in level_names:
        header += [f"{name}_auroc", f"{name}_auroc_ci_low", f"{name}_auroc_ci_high", f"{name}_f1"]
    header += ["macro_auroc", "macro_auroc_ci_low", "macro_auroc_ci_high", "macro_f1"]
    header += ["macro_auroc_n_levels", "macro_f1_n_levels", "ci_not_estimable"]
    header += ["test_snapshot", "test_snapshot_sha256", "train_targets_self_report", "train_targets_observer_median"]
    # A random-init backbone is flagged in every export: its numbers are not the study's VGG16's.
    header += ["backbone"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        m = row.metrics
        line: list[Any] = [row.trained_on, row.evaluated_on, row.version.name, m["n_images"], m["n_patients"]]
        for name in level_names:
            entry = level_metrics(m, name)
            ci = entry.get("ci") if not is_zero_width(entry.get("ci")) else None
            ci = ci or ["", ""]
            f1 = entry.get("f1") if entry.get("support") else None  # no case: no F1, not 0
            line += [_csv_value(entry.get("auroc")), _csv_value(ci[0]), _csv_value(ci[1]), _csv_value(f1)]
        ci = m.get("macro_auroc_ci") if not is_zero_width(m.get("macro_auroc_ci")) else None
        ci = ci or ["", ""]
        line += [_csv_value(m.get("macro_auroc")), _csv_value(ci[0]), _csv_value(ci[1]), _csv_value(m.get("macro_f1"))]
        line += [*macro_level_counts(m), not_estimable_summary(m, level_names)]
        train = (row.target_sources or {}).get("train") or {}
        line += [row.snapshot.pk, row.snapshot.sha256] if row.snapshot is not None else ["", ""]
        line += [_csv_value(train.get("self_report")), _csv_value(train.get("observer_median"))]
        line += [row.version.backbone]
        writer.writerow(line)
    return out.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _auroc_text(entry: dict[str, Any], dash: str) -> str:
    auroc = entry.get("auroc")
    if auroc is None:
        return gettext("n/a")
    interval = format_interval(entry.get("ci"), dash=dash)
    if not interval and entry.get("ci_not_estimable"):
        return f"{auroc:.3f} ({format_not_estimable(entry['ci_not_estimable'])})"
    return f"{auroc:.3f} ({interval})" if interval else f"{auroc:.3f}"


def paper_cells(row: PaperRow, level_names: Sequence[str], dash: str = "–") -> list[str]:
    m = row.metrics
    version = (
        gettext("%(name)s (random-init backbone)") % {"name": row.version.name}
        if row.version.is_random_init
        else row.version.name
    )
    cells = [row.trained_on, row.evaluated_on, version, f"{m['n_images']} ({m['n_patients']})"]
    for name in level_names:
        entry = level_metrics(m, name)
        cells += [_auroc_text(entry, dash), format_number(entry.get("f1")) if entry.get("support") else gettext("n/a")]
    macro = {
        "auroc": m.get("macro_auroc"),
        "ci": m.get("macro_auroc_ci"),
        "ci_not_estimable": m.get("macro_auroc_ci_not_estimable"),
    }
    auroc_levels, f1_levels = macro_level_counts(m)
    macro_auroc = _auroc_text(macro, dash)
    levels = gettext("%(value)s; %(n)s levels")
    cells += [
        levels % {"value": macro_auroc, "n": auroc_levels} if macro["auroc"] is not None else macro_auroc,
        levels % {"value": format_number(m.get("macro_f1")), "n": f1_levels},
    ]
    return cells


def paper_header(level_names: Sequence[str]) -> list[str]:
    header = [gettext("Trained on"), gettext("Evaluated on"), gettext("Version"), gettext("Images (patients)")]
    for name in [*level_names, "macro"]:
        header += [
            gettext("%(level)s AUROC (95%% CI)") % {"level": level_word(name)},
            gettext("%(level)s F1") % {"level": level_word(name)},
        ]
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
