"""Checking what the service signed, offline, with a public key you trust: a saved gate decision
(`verify_decision`, `decision_problems`) and a report bundle (`verify_report`). Every signature is
Ed25519 over the canonical JSON of the signed statement (mlgov/canonical_json.py); the audit chain
and its checkpoints are checked by mlgov/audit.py.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from typing import Any

from mlgov.canonical_json import canonical_bytes

# Top-level copies of signed fields, as the API serves a decision: `id` is the statement's `decision`.
_DECISION_COPIES = {"id": "decision", "stage": "stage", "passed": "passed", "key_id": "key_id"}


def verify_decision(document: dict[str, Any], public_key_b64: str) -> bool:
    """Check a saved gate decision's Ed25519 signature over the statement's canonical JSON (sorted
    keys, no spaces, UTF-8), with a public key you trust. `decision_problems` checks the rest."""
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415 - a light `import mlgov`
    from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: PLC0415 - a light `import mlgov`

    statement = document.get("statement")
    signature = document.get("signature")
    if not isinstance(statement, dict) or not isinstance(signature, str):
        return False
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64)).verify(
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


# The sections a report (format 2 on) keeps a digest of, in `report["sections"]`.
REPORT_SECTIONS = (
    "model_card",
    "datasheets",
    "fairness",
    "explanation",
    "gate_decisions",
    "promotion_requests",
    "provenance",
    "provenance_graph",
    "audit_events",
    "charts",
)


def verify_report(document: dict[str, Any], public_key_b64: str) -> list[str]:
    """Check a report bundle offline; returns the problems found (empty when it verifies): the
    bundle's signature over the whole report, the digest of each section (so an edit is named by its
    section: the model card, a datasheet, a fairness table, a review, a rule's threshold, a chart, a
    provenance edge ...), every gate decision's own signature, and the audit events' hashes and the
    links between consecutive ones."""
    report = document.get("report")
    if not isinstance(report, dict):
        return ["the file is not a report bundle"]
    problems = []
    if not verify_decision({"statement": report, "signature": document.get("signature")}, public_key_b64):
        problems.append(
            "the report's signature does not match its content and this key"
            + _key_hint(report, public_key_b64)
        )
    problems += _section_problems(report)
    problems += _decision_problems(report, public_key_b64)
    problems += _event_problems(report.get("audit_events"))
    return problems


def _key_hint(report: dict[str, Any], public_key_b64: str) -> str:
    """Where the report names another key than the one given, say so (after a key rotation, verify
    with the key the report was signed with)."""
    try:
        given = hashlib.sha256(base64.b64decode(public_key_b64)).hexdigest()[:16]
    except ValueError:
        return ""
    named = report.get("key_id")
    return f" (the report names key {named}; the key given is {given})" if named and named != given else ""


def _section_problems(report: dict[str, Any]) -> list[str]:
    """Each section against the digest the signed report keeps of it."""
    digests = report.get("sections")
    if not isinstance(digests, dict):
        return ["the report keeps no section digests"] if report.get("format", 1) >= 2 else []
    problems = [f"the {name} section has no digest" for name in REPORT_SECTIONS if name not in digests]
    for name, digest in digests.items():
        if name not in report:
            problems.append(f"the {name} section is missing")
        elif hashlib.sha256(canonical_bytes(report[name])).hexdigest() != digest:
            problems.append(f"the {name} section does not match its digest")
    return problems


def _decision_problems(report: dict[str, Any], public_key_b64: str) -> list[str]:
    """Each gate decision's own signature, and that it is about the report's model version."""
    problems = []
    subject = {field: report.get(field) for field in ("workspace", "model", "version")}
    for index, decision in enumerate(report.get("gate_decisions") or [], start=1):
        statement = decision.get("statement") if isinstance(decision, dict) else None
        if not isinstance(statement, dict) or not verify_decision(decision, public_key_b64):
            problems.append(f"gate decision {index}: the signature does not match")
            continue
        about = {field: statement.get(field) for field in subject}
        if about != subject:
            problems.append(
                f"gate decision {index} is about {about['model']}@{about['version']} in "
                f"{about['workspace']}, not the report's model version"
            )
    return problems


def _event_problems(events: Any) -> list[str]:
    """Each event's hash (SHA-256 of its previous hash and its document's canonical JSON), and each
    event's previous hash against the hash of the event listed before it where the two are
    consecutive in the chain (the report lists only the events about its version)."""
    problems: list[str] = []
    previous: dict[str, Any] | None = None
    for event in events or []:
        document = event.get("document") if isinstance(event, dict) else None
        if not isinstance(document, dict):
            problems.append("an audit event has no document")
            continue
        seq, prev_hash = document.get("seq"), event.get("prev_hash")
        digest = hashlib.sha256(str(prev_hash or "").encode() + canonical_bytes(document)).hexdigest()
        if digest != event.get("hash"):
            problems.append(f"audit event {seq}: its content does not match its hash")
        if previous is not None and isinstance(seq, int):
            before = previous["document"].get("seq")
            if not isinstance(before, int) or seq <= before:
                problems.append(f"audit event {seq} is listed after event {before}")
            elif seq == before + 1 and prev_hash != previous.get("hash"):
                problems.append(f"audit event {seq}: its previous hash is not event {before}'s hash")
        previous = event
    return problems


def verify_techfile(document: dict[str, Any], public_key_b64: str) -> list[str]:
    """Check a technical-file bundle offline; returns the problems found (empty when it verifies):
    the signature over the file, every evidence document against the SHA-256 the signed file keeps of
    it (a changed byte or a dropped document is named by its id), every cited id among them, and the
    cited gate decisions' own signatures and audit events' hashes."""
    techfile = document.get("techfile")
    carried = document.get("evidence")
    if not isinstance(techfile, dict) or not isinstance(carried, dict):
        return ["the file is not a technical-file bundle"]
    problems = []
    if not verify_decision({"statement": techfile, "signature": document.get("signature")}, public_key_b64):
        problems.append(
            "the technical file's signature does not match its content and this key"
            + _key_hint(techfile, public_key_b64)
        )
    digests = techfile.get("evidence") if isinstance(techfile.get("evidence"), dict) else {}
    for ident, digest in sorted(digests.items()):
        if ident not in carried:
            problems.append(f"evidence {ident} is missing from the bundle")
        elif hashlib.sha256(canonical_bytes(carried[ident])).hexdigest() != digest:
            problems.append(f"evidence {ident} does not match the hash the file cites")
    problems += [
        f"evidence {ident} is not cited by the signed file" for ident in sorted(set(carried) - set(digests))
    ]
    for section in techfile.get("sections") or []:
        cited = [c for s in section.get("statements") or [] for c in s.get("cites") or []]
        cited += [c for a in section.get("authored") or [] for c in a.get("cites") or []]
        problems += [
            f"section {section.get('number')} cites {ident}, which the file does not list"
            for ident in sorted(set(cited) - set(digests))
        ]
    for ident, item in sorted(carried.items()):
        if ident.startswith("decision:") and not verify_decision(item, public_key_b64):
            problems.append(f"evidence {ident}: the gate decision's signature does not match")
        if ident.startswith("audit:") and ident != "audit:head":
            problems += [f"evidence {ident}: {p}" for p in _event_problems([item])]
    return problems


def verify_audit_export(document: dict[str, Any], public_key_b64: str) -> list[str]:
    """Check an audit-log export offline; returns the problems found (empty when it verifies): the
    signature over the export, every event's hash, that the events follow one another in the chain
    with nothing left out (each one's previous hash is the hash of the one before it, the first's that
    of the event before the period), the count, and that every event is of the exported workspace."""
    export = document.get("export")
    if not isinstance(export, dict) or not isinstance(export.get("events"), list):
        return ["the file is not an audit-log export"]
    problems = []
    if not verify_decision({"statement": export, "signature": document.get("signature")}, public_key_b64):
        problems.append(
            "the export's signature does not match its content and this key"
            + _key_hint(export, public_key_b64)
        )
    events = export["events"]
    problems += _event_problems(events)
    documents = [
        e.get("document") for e in events if isinstance(e, dict) and isinstance(e.get("document"), dict)
    ]
    seqs = [d.get("seq") for d in documents]
    for before, after in itertools.pairwise(seqs):
        if isinstance(before, int) and isinstance(after, int) and after > before + 1:
            problems.append(f"events {before + 1} to {after - 1} are missing from the export")
    anchor = export.get("before")
    first = events[0] if events and isinstance(events[0], dict) else None
    if first is not None and isinstance(anchor, dict) and first.get("prev_hash") != anchor.get("hash"):
        problems.append(f"audit event {seqs[0]}: its previous hash is not event {anchor.get('seq')}'s hash")
    if export.get("count") != len(events):
        problems.append(f"the export says {export.get('count')} events but holds {len(events)}")
    others = sorted({str(d.get("workspace")) for d in documents} - {str(export.get("workspace_id"))})
    problems += [f"events of another workspace ({other}) are in the export" for other in others]
    return problems
