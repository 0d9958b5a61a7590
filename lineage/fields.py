"""Model fields that keep any string verbatim on every database.

PostgreSQL refuses the NUL character in text and in jsonb. Lineage names and property values come
from other systems and must round-trip exactly, so keys and names are stored with a two-rule escape
(backslash -> two backslashes, NUL -> backslash-zero) and properties as JSON text, where NUL is the
six characters of a JSON escape.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from core.canonical_json import canonical_json


def nul_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\x00", "\\0")


def nul_unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append("\x00" if nxt == "0" else nxt)
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


class NulSafeCharField(models.CharField):
    def from_db_value(self, value, expression, connection):
        return None if value is None else nul_unescape(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return None if value is None else nul_escape(str(value))


class JSONTextField(models.TextField):
    """JSON kept as canonical text (not jsonb): any string survives, and equal values compare equal."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(value)

    def to_python(self, value):
        if isinstance(value, str):
            return json.loads(value)
        return value

    def get_prep_value(self, value: Any):
        return None if value is None else canonical_json(value)

    def value_to_string(self, obj):
        return canonical_json(self.value_from_object(obj))
