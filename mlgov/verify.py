"""Checking what the service signed, offline, with a public key you trust: a saved gate decision
(`verify_decision`, `decision_problems`) and a report bundle (`verify_report`). Every signature is
Ed25519 over the canonical JSON of the signed statement (mlgov/canonical_json.py); the audit chain
and its checkpoints are checked by mlgov/audit.py.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from mlgov.canonical_json import canonical_bytes

# Top-level copies of signed fields, as the API serves a decision: `id` is the statement's `decision`.
_DECISION_COPIES = {"id": "decision", "stage": "stage", "passed": "passed", "key_id": "key_id"}


def verify_decision(document: dict[str, Any], public_key_b64: str) -> bool:
    """Check a saved gate decision's Ed25519 signature over the statement's canonical JSON (sorted
    keys, no spaces, UTF-8), with a public key you trust. `decision_problems` checks the rest."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    statement = document.get("statement")
    signature = document.get("signature")
    if not isinstance(statement, dict) or not isinstance(signature, str):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64)).verify(
            base64.b64decode(signature), canonical_bytes(statement)
        )
    except (InvalidSignature, ValueError, TypeError):  # ValueError: also a statement with NaN in it
        return False
    return True


def decision_problems(
    document: dict[str, Any], public_key_b64: str, expect: dict[str, str] | None = None
) -> list[str]:
    """Everything wrong with a saved gate decision, checked offline; empty when it can be relied on.

    Only `statement` is signed, so besides the signature every unsigned top-level copy of a signed
    field must agree with it (a file edited to say `"passed": true` outside the statement is caught),
    and the statement must be about what `expect` names (`workspace`, `model`, `version`, `stage`,
    `artifact_sha256`): a valid decision for another workspace or file is not this one's."""
    if not verify_decision(document, public_key_b64):
        return ["the signature does not match this decision and key"]
    statement = document["statement"]
    problems = [
        f"{key!r} outside the signed statement says {document[key]!r}, "
        f"the statement says {statement.get(field)!r}"
        for key, field in _DECISION_COPIES.items()
        if key in document and str(document[key]) != str(statement.get(field))
    ]
    problems += [
        f"the decision is for {field} {statement.get(field)!r}, not {wanted!r}"
        for field, wanted in (expect or {}).items()
        if wanted is not None and str(statement.get(field)) != str(wanted)
    ]
    return problems


def verify_report(document: dict[str, Any], public_key_b64: str) -> list[str]:
    """Check a report bundle offline; returns the problems found (empty when it verifies): the
    bundle's signature, every gate decision's signature, and every audit event's hash."""
    problems = []
    report = document.get("report")
    if not isinstance(report, dict):
        return ["the file is not a report bundle"]
    if not verify_decision({"statement": report, "signature": document.get("signature")}, public_key_b64):
        problems.append("the report's signature does not match its content and this key")
    for index, decision in enumerate(report.get("gate_decisions", [])):
        if not verify_decision(decision, public_key_b64):
            problems.append(f"gate decision {index + 1}: the signature does not match")
    for event in report.get("audit_events", []):
        document_ = event.get("document", {})
        digest = hashlib.sha256(event.get("prev_hash", "").encode() + canonical_bytes(document_)).hexdigest()
        if digest != event.get("hash"):
            problems.append(f"audit event {document_.get('seq')}: its content does not match its hash")
    return problems
