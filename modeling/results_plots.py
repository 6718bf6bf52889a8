"""Plot specifications for static/js/plots.js, built from stored metrics.

A spec is plain JSON: the browser draws it as SVG and the template lists the same numbers in a
table beside the plot (the text alternative), so the picture and the table cannot disagree.
Colours are CSS custom properties from the Okabe–Ito palette; every series also has its own dash
pattern or marker, so nothing depends on colour alone.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from modeling.metric_views import calibration, confusion, roc_curves
from modeling.vocabulary import level_word

LEVEL_COLOURS = ["--level-none", "--level-mild", "--level-moderate", "--level-severe"]
EXTRA_COLOURS = ["--okabe-purple", "--okabe-yellow", "--okabe-blue", "--okabe-black"]
LEVEL_DASHES = ["", "6 3", "2 3", "10 3 2 3"]
VERSION_STYLE = {"a": ("--version-a", ""), "b": ("--version-b", "7 4")}


def _level_style(index: int) -> tuple[str, str]:
    colours = LEVEL_COLOURS + EXTRA_COLOURS
    return colours[index % len(colours)], LEVEL_DASHES[index % len(LEVEL_DASHES)]


def _auroc_label(name: str, auroc: float | None) -> str:
    shown = f"{auroc:.3f}" if auroc is not None else gettext("n/a")
    return gettext("%(name)s (AUROC %(auroc)s)") % {"name": name, "auroc": shown}


def roc_levels_spec(metrics: dict[str, Any], title: str) -> dict[str, Any]:
    """One ROC plot with a curve per pain level (one-vs-rest)."""
    series = []
    for index, curve in enumerate(roc_curves(metrics)):
        if not curve["fpr"]:
            continue
        colour, dash = _level_style(index)
        series.append(
            {
                "label": _auroc_label(level_word(curve["level"]), curve["auroc"]),
                "colour": colour,
                "dash": dash,
                "points": list(zip(curve["fpr"], curve["tpr"], strict=True)),
            }
        )
    return _roc_spec(title, series)


def roc_overlay_spec(level: str, sides: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One level's ROC curves of versions A and B on the same axes."""
    series = []
    for side, (version_name, metrics) in sides.items():
        curve = next((c for c in roc_curves(metrics) if c["level"] == level), None)
        if curve is None or not curve["fpr"]:
            continue
        colour, dash = VERSION_STYLE[side]
        series.append(
            {
                "label": f"{side.upper()}: " + _auroc_label(version_name, curve["auroc"]),
                "colour": colour,
                "dash": dash,
                "points": list(zip(curve["fpr"], curve["tpr"], strict=True)),
            }
        )
    return _roc_spec(gettext("ROC: %(level)s vs rest") % {"level": level_word(level)}, series)


def _unit_square_lines(
    title: str, x_label: str, y_label: str, diagonal: str, series: list[dict[str, Any]]
) -> dict[str, Any]:
    """A line plot on [0, 1] × [0, 1] with a labelled diagonal (ROC curves, reliability diagrams)."""
    return {
        "kind": "lines",
        "title": title,
        "x_label": x_label,
        "y_label": y_label,
        "x_domain": [0, 1],
        "y_domain": [0, 1],
        "diagonal": diagonal,
        "series": series,
    }


def _roc_spec(title: str, series: list[dict[str, Any]]) -> dict[str, Any]:
    return _unit_square_lines(
        title,
        gettext("False positive rate (1 − specificity)"),
        gettext("True positive rate (sensitivity)"),
        gettext("chance"),
        series,
    )


def calibration_spec(sides: list[tuple[str, str, str, dict[str, Any]]], title: str) -> dict[str, Any]:
    """Reliability diagram: per confidence bin, mean confidence against accuracy.

    `sides` lists (label, colour, dash, metrics) so one or two versions share the axes.
    """
    series = []
    for label, colour, dash, metrics in sides:
        found = calibration(metrics)
        points = [
            [bin_["confidence"], bin_["accuracy"]]
            for bin_ in found["bins"]
            if bin_.get("count") and bin_.get("confidence") is not None and bin_.get("accuracy") is not None
        ]
        ece = found["ece"]
        suffix = f" (ECE {ece:.3f})" if ece is not None else ""
        series.append({"label": label + suffix, "colour": colour, "dash": dash, "markers": True, "points": points})
    return _unit_square_lines(
        title,
        gettext("Mean predicted probability (confidence)"),
        gettext("Observed accuracy"),
        gettext("perfect calibration"),
        series,
    )


def confusion_spec(metrics: dict[str, Any], title: str) -> dict[str, Any]:
    found = confusion(metrics)
    return {
        "kind": "heatmap",
        "title": title,
        "x_label": gettext("Predicted level"),
        "y_label": gettext("True level"),
        "labels": [level_word(label) for label in found["labels"]],
        "rows": [
            {
                "label": level_word(label),
                "cells": [{"count": count, "share": share} for count, share in zip(counts, shares, strict=True)],
            }
            for label, counts, shares in zip(found["labels"], found["counts"], found["row_normalised"], strict=True)
        ],
    }


def training_specs(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Loss (training and validation) and validation macro AUROC per epoch, as two plots: one
    axis each reads more plainly than a shared plot with two y-axes."""

    def points(key: str) -> list[list[float]]:
        return [[entry["epoch"], entry[key]] for entry in history if entry.get(key) is not None]

    loss, val_loss, auroc = points("loss"), points("val_loss"), points("val_macro_auroc")
    epochs = [entry["epoch"] for entry in history if entry.get("epoch") is not None] or [1]
    x_domain = [min(epochs), max(max(epochs), min(epochs) + 1)]
    loss_series = [
        {"label": gettext("training loss"), "colour": "--version-a", "dash": "", "markers": True, "points": loss}
    ]
    if val_loss:
        loss_series.append(
            {
                "label": gettext("validation loss"),
                "colour": "--version-b",
                "dash": "7 4",
                "markers": True,
                "points": val_loss,
            }
        )
    return [
        {
            "kind": "lines",
            "title": gettext("Loss per epoch"),
            "x_label": gettext("Epoch"),
            "y_label": gettext("Cross-entropy loss"),
            "x_domain": x_domain,
            "y_domain": [0, max([y for _, y in loss + val_loss] or [1]) * 1.05],
            "integer_x": True,
            "series": loss_series,
        },
        {
            "kind": "lines",
            "title": gettext("Validation macro AUROC per epoch"),
            "x_label": gettext("Epoch"),
            "y_label": gettext("Validation macro AUROC"),
            "x_domain": x_domain,
            "y_domain": [0, 1],
            "integer_x": True,
            "series": [
                {
                    "label": gettext("validation macro AUROC"),
                    "colour": "--okabe-purple",
                    "dash": "",
                    "markers": True,
                    "points": auroc,
                }
            ],
        },
    ]
