"""`mlgov verify-report` checks a bundle offline: the signature over the whole report, each
section's digest (so an edit is named by its section), each gate decision's own signature, and the
audit events' hashes and the links between consecutive ones. The untouched bundle verifies."""

from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core import signing
from governance import reports
from mlgov.canonical_json import canonical_bytes
from mlgov.cli import main as mlgov_main
from mlgov.verify import verify_report

SIGNATURE = "the report's signature does not match its content and this key"


def _key() -> str:
    return signing.public_key_document()["public_key"]


def _card(report):
    details = next(s for s in report["model_card"]["sections"] if s["name"] == "model_details")
    next(f for f in details["fields"] if f["name"] == "description")["text"] = "Predicts nothing at all"


def _datasheet(report):
    report["datasheets"][0]["sections"][0]["fields"][0]["text"] = "collected for marketing"


def _fairness_cell(report):
    report["fairness"][0]["groups"][0]["size"] += 100


def _review_comment(report):
    report["promotion_requests"][0]["reviews"][0]["comment"] = "Looks fine, did not read it"


def _threshold(report):
    for decision in report["gate_decisions"]:
        for rule in decision["rules"]:
            if rule["rule"] == "parity":
                rule["parameters"]["max"] = 0.5


def _chart(report):
    report["charts"]["fairness:sex"] = report["charts"]["fairness:sex"].replace("(n=", "(n=1")


def _edge(report):
    report["provenance_graph"]["edges"][0]["to"] = "other-data@v9"


EDITS = {
    "model_card": _card,
    "datasheets": _datasheet,
    "fairness": _fairness_cell,
    "promotion_requests": _review_comment,
    "gate_decisions": _threshold,
    "charts": _chart,
    "provenance_graph": _edge,
}


@pytest.fixture
def document(evidenced):
    return reports.bundle(evidenced)


def test_the_untouched_bundle_verifies(document):
    assert verify_report(document, _key()) == []


@pytest.mark.parametrize("section", list(EDITS))
def test_an_edit_fails_the_signature_and_names_its_section(document, section):
    edited = copy.deepcopy(document)
    EDITS[section](edited["report"])
    problems = verify_report(edited, _key())
    assert problems[0] == SIGNATURE
    assert f"the {section} section does not match its digest" in problems
    assert len(problems) == 2, problems  # nothing else is blamed


def test_an_edit_with_its_digest_recomputed_still_fails_the_signature(document):
    edited = copy.deepcopy(document)
    _card(edited["report"])
    model_card = edited["report"]["model_card"]
    edited["report"]["sections"]["model_card"] = hashlib.sha256(canonical_bytes(model_card)).hexdigest()
    assert verify_report(edited, _key()) == [SIGNATURE]


def test_a_removed_section_is_named(document):
    edited = copy.deepcopy(document)
    del edited["report"]["fairness"]
    assert "the fairness section is missing" in verify_report(edited, _key())


def test_a_decision_edited_inside_its_statement_fails_its_own_signature(document):
    edited = copy.deepcopy(document)
    statement = edited["report"]["gate_decisions"][0]["statement"]
    statement["passed"] = True
    problems = verify_report(edited, _key())
    assert "gate decision 1: the signature does not match" in problems
    assert "the gate_decisions section does not match its digest" in problems


def test_an_event_rehashed_onto_another_previous_hash_breaks_the_link(document):
    edited = copy.deepcopy(document)
    events = edited["report"]["audit_events"]
    index = next(
        i
        for i in range(1, len(events))
        if events[i]["document"]["seq"] == events[i - 1]["document"]["seq"] + 1
    )
    event = events[index]
    event["document"]["actor"] = "user:mallory"
    event["prev_hash"] = "0" * 64  # a forger who re-hashes the event cannot also fix its predecessor
    event["hash"] = hashlib.sha256(
        event["prev_hash"].encode() + canonical_bytes(event["document"])
    ).hexdigest()
    seq, before = event["document"]["seq"], events[index - 1]["document"]["seq"]
    problems = verify_report(edited, _key())
    assert f"audit event {seq}: its previous hash is not event {before}'s hash" in problems
    assert not any("its content does not match its hash" in p for p in problems)
    tampered = copy.deepcopy(document)
    tampered["report"]["audit_events"][0]["document"]["action"] = "model.delete"
    seq = tampered["report"]["audit_events"][0]["document"]["seq"]
    assert f"audit event {seq}: its content does not match its hash" in verify_report(tampered, _key())


def test_another_key_is_named_beside_the_failed_signature(document):
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    problems = verify_report(document, base64.b64encode(raw).decode())
    named, given = document["report"]["key_id"], hashlib.sha256(raw).hexdigest()[:16]
    assert problems[0] == f"{SIGNATURE} (the report names key {named}; the key given is {given})"


def test_the_command_exits_0_for_the_bundle_and_1_naming_the_edit(document, tmp_path, capsys):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(signing.public_key_document()))
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(document))
    assert mlgov_main(["verify-report", str(saved), "--public-key", str(key)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("valid: report of income@1 (10 sections, ")
    assert " 1 reviews, " in out
    for section, edit in EDITS.items():
        edited = copy.deepcopy(document)
        edit(edited["report"])
        saved.write_text(json.dumps(edited))
        assert mlgov_main(["verify-report", str(saved), "--public-key", str(key)]) == 1
        err = capsys.readouterr().err
        assert f"INVALID: {SIGNATURE}" in err
        assert f"INVALID: the {section} section does not match its digest" in err


def test_a_bundle_made_before_section_digests_still_verifies(document, tmp_path):
    old = {
        key: value
        for key, value in document["report"].items()
        if key in ("kind", "workspace", "model", "version", "stage", "artifact_sha256", "generated_at")
        or key in ("provenance", "audit_events", "gate_decisions", "key_id")
    }
    old["gate_decisions"] = [
        {k: d[k] for k in ("statement", "signature", "key_id")} for d in old["gate_decisions"]
    ]
    bundle = {"report": old, "signature": signing.sign(old), "algorithm": "Ed25519", "key_id": old["key_id"]}
    assert verify_report(bundle, _key()) == []
    key = tmp_path / "key.json"
    key.write_text(json.dumps(signing.public_key_document()))
    (tmp_path / "old.json").write_text(json.dumps(bundle))
    assert mlgov_main(["verify-report", str(tmp_path / "old.json"), "--public-key", str(key)]) == 0


def test_the_verifier_knows_every_section_the_service_digests():
    from governance.reports.contents import SECTIONS
    from mlgov.verify import REPORT_SECTIONS

    assert REPORT_SECTIONS == SECTIONS  # the client stands alone, so it keeps its own list
