"""The policy document: its schema, and the validation that makes a bad rule a 400 at upload rather
than a failure at the gate. Storing a policy is `services.policy_upload`."""

from __future__ import annotations

from typing import Any

import jsonschema

from core.errors import ApplicationError, FieldError
from governance import checks
from governance.models import Stage
from governance.names import NAME_PATTERN
from governance.scoping import APPLIES_TO_SCHEMA

POLICY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "stages", "rules"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "description": {"type": "string", "maxLength": 2000},
        "stages": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": [Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED]},
        },
        "rules": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "object"}},
        "applies_to": APPLIES_TO_SCHEMA,
    },
}


def policy_validate(document: Any) -> dict[str, Any]:
    """Check the whole document now, so that a bad rule is a 400 at upload, not a failure later."""
    errors: list[FieldError] = []
    validator = jsonschema.Draft202012Validator(POLICY_SCHEMA)
    for error in validator.iter_errors(document):
        path = ".".join(str(p) for p in error.absolute_path)
        errors.append(FieldError(path or "document", error.message))
    if errors:
        raise ApplicationError("the policy is not valid", errors=errors)
    seen: set[str] = set()
    for index, rule in enumerate(document["rules"]):
        kind = rule.get("type")
        check = checks.REGISTRY.get(kind)
        if check is None:
            errors.append(
                FieldError(
                    f"rules.{index}.type",
                    f"unknown check type {kind!r}; known: {', '.join(sorted(checks.REGISTRY))}",
                )
            )
            continue
        errors.extend(_rule_errors(index, kind, check, rule))
        rule_id = rule.get("id") or f"{kind}-{index + 1}"
        if rule_id in seen:
            errors.append(FieldError(f"rules.{index}.id", f"rule id {rule_id!r} is used twice"))
        seen.add(rule_id)
    if errors:
        raise ApplicationError("the policy is not valid", errors=errors)
    return document


def _rule_errors(index: int, kind: str, check: type[checks.Check], rule: dict[str, Any]) -> list[FieldError]:
    """The rule against its check type's parameters (and its own `applies_to`, which any rule may
    have), each error named `rules.N.field`."""
    errors: list[FieldError] = []
    if "applies_to" in rule:
        for error in jsonschema.Draft202012Validator(APPLIES_TO_SCHEMA).iter_errors(rule["applies_to"]):
            path = ".".join(str(p) for p in error.absolute_path)
            errors.append(
                FieldError(f"rules.{index}.applies_to" + (f".{path}" if path else ""), error.message)
            )
        rule = {k: v for k, v in rule.items() if k != "applies_to"}
    for error in jsonschema.Draft202012Validator(check.schema()).iter_errors(rule):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(rule) - set(check.schema()["properties"]), key=str)
            errors.extend(FieldError(f"rules.{index}.{name}", f"unknown field for {kind}") for name in extra)
            continue
        field = f"rules.{index}.{path}" if path else f"rules.{index}"
        errors.append(FieldError(field, error.message))
    return errors
