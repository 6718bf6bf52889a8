"""Number formatting for the results pages: three decimals as studies report them."""

from __future__ import annotations

from collections.abc import Sequence

from django import template

from modeling.results import format_interval, format_number, format_p_value
from modeling.results_estimability import (
    ZERO_WIDTH,
    format_not_estimable,
    is_zero_width,
)

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
        return "n/a"
    return f"+{value:.3f}" if value >= 0 else f"−{abs(value):.3f}"


@register.filter
def signed_interval(ci: Sequence[float] | None, reason: str | None = None) -> str:
    if not ci:
        return format_not_estimable(reason)
    if is_zero_width(ci):
        return format_not_estimable(ZERO_WIDTH)
    return f"{signed(ci[0])} to {signed(ci[1])}"


@register.filter
def p_value(p: float | None, reason: str | None = None) -> str:
    if p is None and reason:
        return format_not_estimable(reason)
    return format_p_value(p)


@register.filter
def f1_of(entry: dict | None) -> str:
    """A level's F1, "n/a" when the test set has no case of it (its stored 0 means nothing)."""
    if not entry or not entry.get("support"):
        return "n/a"
    return format_number(entry.get("f1"))


@register.filter
def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


@register.filter
def full_precision(value: float | None) -> str:
    """The stored number exactly (for data attributes that scripts and checks read)."""
    return "" if value is None else repr(value)
