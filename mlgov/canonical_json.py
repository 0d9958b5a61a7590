"""Canonical JSON, byte for byte as the service computes it (core/canonical_json.py, which the client
does not import): sorted keys, no insignificant whitespace, UTF-8 text, and no NaN or Infinity. Gate
decisions, report bundles and audit checkpoints are signed, and audit events hashed, over these bytes.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_bytes(value: Any) -> bytes:
    """The value's canonical JSON as UTF-8; ValueError for NaN or Infinity (the service never signs
    or hashes them, so a document holding one cannot be what it signed)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
