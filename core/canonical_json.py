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


def normalise(value: Any) -> Any:
    """Round-trip through canonical JSON so what is stored is exactly what is hashed."""
    return json.loads(canonical_json(value))
