"""Governance writes, each atomic with its audit event: the registry, datasheets and policies
(`registry`), gate checks and promotion (`promotion`). Reads are in `governance.selectors`, gate
evaluation in `governance.gates`, the policy schema in `governance.policies`."""

from __future__ import annotations

# `evaluate` is a read (governance.gates); re-exported because demo/seed.py calls `services.evaluate`.
from governance.gates import evaluate
from governance.services.promotion import gate_check, promotion_request, review
from governance.services.registry import (
    alias_set,
    datasheet_push,
    model_update,
    policy_upload,
    version_register,
)

__all__ = [
    "alias_set",
    "datasheet_push",
    "evaluate",
    "gate_check",
    "model_update",
    "policy_upload",
    "promotion_request",
    "review",
    "version_register",
]
