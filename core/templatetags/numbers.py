"""Numbers as people read them: about four significant digits on the page (the full value stays in
the page's title attribute and in the JSON)."""

from __future__ import annotations

import math
from typing import Any

from django import template

register = template.Library()


@register.filter
def sig(value: Any, digits: int = 4) -> str:
    """`0.31415926` -> `0.3142`, `1234567.0` -> `1.235e+06`; blank for none, `n/a` for NaN."""
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "n/a"
    return f"{number:.{int(digits)}g}"


@register.filter
def interval(estimate: Any) -> str:
    """An estimate's interval as `[low, high]`, or blank when it has none."""
    low, high = getattr(estimate, "low", None), getattr(estimate, "high", None)
    if low is None or high is None:
        return ""
    return f"[{sig(low)}, {sig(high)}]"
