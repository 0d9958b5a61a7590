"""Canonical JSON: one byte string per value, so that hashes and signatures are reproducible."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 text, and no NaN or Infinity."""
    if value == {} and type(value) is dict:  # most lineage edges: skip the encoder
        return "{}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_bytes(value: Any) -> bytes:
    return canonical_json(value).encode("utf-8")


def _as_jsonb_returns_it(text: str) -> float | int:
    """A JSON number as PostgreSQL's jsonb gives it back: jsonb keeps numbers as decimals and writes
    them out in full, so a float Python writes with an exponent and no fraction (1e+16) comes back
    as an integer (10000000000000000), and -0.0 as 0.0."""
    number = float(text)
    if number == 0:
        return 0.0
    if ("e" in text or "E" in text) and number.is_integer():
        return int(number)
    return number


def normalise(value: Any) -> Any:
    """Round-trip through canonical JSON so what is stored is exactly what is hashed, on SQLite and
    on PostgreSQL alike: numbers take the form jsonb gives back (_as_jsonb_returns_it), or a hash
    made over 1e+16 would not match the 10000000000000000 read back to verify it."""
    return json.loads(canonical_json(value), parse_float=_as_jsonb_returns_it)
