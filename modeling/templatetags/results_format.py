"""Number formatting for the results pages: three decimals as studies report them."""

from __future__ import annotations

from collections.abc import Sequence

from django import template

from modeling.results import format_interval, format_number, format_p_value

register = template.Library()


@register.filter
def metric(value: float | None) -> str:
    return format_number(value)


@register.filter
def interval(ci: Sequence[float] | None) -> str:
    return format_interval(ci)


@register.filter
def signed(value: float | None) -> str:
    """A difference with its sign always shown: +0.012, −0.034."""
    if value is None:
        return "n/a"
    return f"+{value:.3f}" if value >= 0 else f"−{abs(value):.3f}"


@register.filter
def signed_interval(ci: Sequence[float] | None) -> str:
    if not ci:
        return ""
    return f"{signed(ci[0])} to {signed(ci[1])}"


@register.filter
def p_value(p: float | None) -> str:
    return format_p_value(p)


@register.filter
def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


@register.filter
def full_precision(value: float | None) -> str:
    """The stored number exactly (for data attributes that scripts and checks read)."""
    return "" if value is None else repr(value)
