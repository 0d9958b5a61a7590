"""Serializer fields shared by the apps' input serializers."""

from __future__ import annotations

from rest_framework import serializers


class NumberField(serializers.FloatField):
    """A JSON number. DRF's FloatField also takes `true` (as 1.0) and numeric strings: a budget spent
    because `"epsilon": true` was read as 1.0 is not what anyone meant, so only numbers are taken."""

    default_error_messages = {"not_a_number": "must be a number, not {kind}"}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            kind = "true or false" if isinstance(data, bool) else f"a {type(data).__name__}"
            self.fail(
                "not_a_number", kind={"str": "a string", "NoneType": "null"}.get(type(data).__name__, kind)
            )
        return super().to_internal_value(data)
