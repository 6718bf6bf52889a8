"""Number formatting for the results pages: three decimals as studies report them."""

from __future__ import annotations

from collections.abc import Sequence

from django import template
from django.utils.translation import gettext

from modeling import vocabulary
from modeling.results import format_interval, format_number, format_p_value
from modeling.results_estimability import (
    ZERO_WIDTH,
    format_not_estimable,
    is_zero_width,
)
from modeling.stored_text import translated_message, translated_reason

register = template.Library()


@register.filter
def metric(value: float | None) -> str:
    return format_number(value)


@register.filter
def interval(ci: Sequence[float] | None, reason: str | None = None) -> str:
    """The interval; without one, "not estimable (reason)" when the metrics say why."""
    return format_interval(ci) if ci else format_not_estimable(reason)


@register.filter
def signed(value: float | None) -> str:
    """A difference with its sign always shown: +0.012, −0.034."""
    if value is None:
        return gettext("n/a")
    return f"+{value:.3f}" if value >= 0 else f"−{abs(value):.3f}"


@register.filter
def signed_interval(ci: Sequence[float] | None, reason: str | None = None) -> str:
    if not ci:
        return format_not_estimable(reason)
    if is_zero_width(ci):
        return format_not_estimable(ZERO_WIDTH)
    return gettext("%(low)s to %(high)s") % {"low": signed(ci[0]), "high": signed(ci[1])}


@register.filter
def p_value(p: float | None, reason: str | None = None) -> str:
    if p is None and reason:
        return format_not_estimable(reason)
    return format_p_value(p)


@register.filter
def f1_of(entry: dict | None) -> str:
    """A level's F1, "n/a" when the test set has no case of it (its stored 0 means nothing)."""
    if not entry or not entry.get("support"):
        return gettext("n/a")
    return format_number(entry.get("f1"))


@register.filter
def percent(value: float | None) -> str:
    return gettext("n/a") if value is None else f"{100 * value:.0f}%"


@register.filter
def full_precision(value: float | None) -> str:
    """The stored number exactly (for data attributes that scripts and checks read)."""
    return "" if value is None else repr(value)


@register.filter
def level_word(name: str) -> str:
    """A pain level's name in the reader's language ("severe" stays the code in data attributes)."""
    return vocabulary.level_word(name)


@register.filter
def stage_word(stage: str) -> str:
    return vocabulary.stage_word(stage)


@register.filter
def cohort_word(cohort: str) -> str:
    return vocabulary.cohort_word(cohort)


@register.filter
def cohorts_words(cohorts: list[str] | None) -> str:
    return vocabulary.cohorts_words(cohorts or [])


@register.filter
def target_source_word(source: str) -> str:
    return vocabulary.target_source_word(source)


@register.filter
def reason(text: str | None) -> str:
    """A reason recorded in English (why a number is missing), in the reader's language."""
    return translated_reason(text)


@register.filter
def mode_word(mode: str) -> str:
    return vocabulary.mode_word(mode)


@register.filter
def split_word(split: str) -> str:
    return vocabulary.split_word(split)


@register.filter
def run_message(text: str | None) -> str:
    """A training run's or an evaluation's progress message, in the reader's language."""
    return translated_message(text)
