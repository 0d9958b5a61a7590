"""An audit event's payload as people read it: text as itself, anything structured as indented JSON
(the exact values, keys sorted, nothing rounded: the payload is what the event's hash covers)."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def structured(value: Any) -> bool:
    """Whether a payload value is an object or a list (shown as JSON) rather than one value."""
    return isinstance(value, (dict, list))


@register.filter
def as_json(value: Any) -> str:
    """The value as indented JSON text."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
