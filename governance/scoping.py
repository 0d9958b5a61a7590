"""Which models a policy (or one of its rules) governs: `applies_to` selects them by name (exact or a
glob such as `credit-*`), by tag and by risk tier. Every criterion given must hold; a policy or rule
without `applies_to` governs every model. A rule that does not apply is reported as not applicable,
not as failed."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from governance.models import RegisteredModel, RiskTier

APPLIES_TO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "models": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": "model names or globs (credit-*)",
        },
        "tags": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {"type": "string", "minLength": 1, "maxLength": 100},
            "description": "models with any of these tags",
        },
        "risk_tiers": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": [str(t) for t in RiskTier]},
        },
    },
}


def applies(selector: Mapping[str, Any] | None, model: RegisteredModel) -> tuple[bool, str]:
    """(whether `selector` selects `model`, and if not, why, in words)."""
    if not selector:
        return True, ""
    names = selector.get("models")
    if names and not any(fnmatch.fnmatchcase(model.name, pattern) for pattern in names):
        return False, f"it governs the models {', '.join(names)}, and {model.name!r} is not one"
    tags = selector.get("tags")
    if tags and not set(tags) & set(model.tags or []):
        held = ", ".join(model.tags or []) or "none"
        return False, f"it governs models tagged {', '.join(tags)} ({model.name!r} has {held})"
    tiers = selector.get("risk_tiers")
    if tiers and model.risk_tier not in tiers:
        tier = model.risk_tier or "not set"
        return False, f"it governs risk tiers {', '.join(tiers)} ({model.name!r} is {tier})"
    return True, ""
