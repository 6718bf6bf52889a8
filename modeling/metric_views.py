"""Stored metrics reshaped for the version page: per-level rows, ROC curves, the confusion matrix,
calibration and the training curve (the numbers behind the plots and their tables).
"""

from __future__ import annotations

from typing import Any

from modeling.models import ModelVersion
from modeling.results import level_metrics


def level_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-level metrics in level order (PostgreSQL's jsonb does not keep key order)."""
    return [{"level": name, **level_metrics(metrics, name)} for name in metrics.get("level_names", [])]


def roc_curves(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    curves = []
    for name in metrics.get("level_names", []):
        entry = level_metrics(metrics, name)
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
