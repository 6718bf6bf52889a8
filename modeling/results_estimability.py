"""How the results pages and exports show what the metrics could not estimate.

The ML core withholds an interval or p-value the test set cannot support and says why
(docs/metrics.md, "Not estimable"); these helpers turn that into text, and count the levels a
macro average covers. Older stored metrics without the reasons read as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.translation import gettext

from modeling.stored_text import translated_reason

# Recorded in English like the ML core's reasons; shown through translated_reason.
ZERO_WIDTH = "every bootstrap resample gave the same value; a zero-width interval is not a confidence interval"


def is_zero_width(ci: Sequence[float] | None) -> bool:
    """Metrics stored before zero-width intervals were withheld may still hold one."""
    return bool(ci) and ci[1] - ci[0] <= 1e-12


def format_not_estimable(reason: str | None) -> str:
    """What stands in place of an interval or p-value the data cannot support."""
    return gettext("not estimable (%(reason)s)") % {"reason": translated_reason(reason)} if reason else ""


def macro_level_counts(m: dict[str, Any]) -> tuple[int, int]:
    """How many levels the macro AUROC and the macro F1 average (older metrics lack the F1 list:
    it is the levels that occur as truth or prediction in the confusion matrix)."""
    auroc_levels = len(m.get("macro_auroc_levels") or [])
    f1_levels = m.get("macro_f1_levels")
    if f1_levels is None:
        counts = m.get("confusion_matrix") or []
        f1_levels = [k for k in range(len(counts)) if sum(counts[k]) or sum(row[k] for row in counts)]
    return auroc_levels, len(f1_levels)


def not_estimable_summary(m: dict[str, Any], level_names: Sequence[str]) -> str:
    """One line of every withheld AUROC interval's reason (the cohort's, when it has one)."""
    if m.get("ci_not_estimable"):
        return m["ci_not_estimable"]
    levels = m.get("levels", {})
    reasons = [
        f"{name} AUROC: {levels[name]['ci_not_estimable']}"
        for name in level_names
        if levels.get(name, {}).get("auroc") is not None and levels[name].get("ci_not_estimable")
    ]
    if m.get("macro_auroc") is not None and m.get("macro_auroc_ci_not_estimable"):
        reasons.append(f"macro AUROC: {m['macro_auroc_ci_not_estimable']}")
    return "; ".join(reasons)
