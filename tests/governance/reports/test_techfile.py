"""The technical file (EU AI Act Annex IV) of a model version: nine sections, generated statements
each citing the evidence it rests on by hash, the authored sections with their completeness, what is
missing listed per section; signed, and checked offline by `mlgov verify-techfile`, which names any
evidence document that was changed or dropped."""

from __future__ import annotations

import base64
import copy
import json

import skops.io as sio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.urls import reverse
from sklearn.tree import DecisionTreeClassifier

from core import signing
from core.actors import Actor
from governance import services, techfile
from mlgov.cli import main as mlgov_main
from mlgov.verify import verify_techfile
from tests.conftest import bearer
from tests.explain.conftest import store_bytes
from tests.factories import make_token
from tests.governance.conftest import training_frame
from tests.governance.reports.conftest import REVIEW_COMMENT
from tests.lineage.helpers import record

SIGNATURE = "the technical file's signature does not match its content and this key"


def _key() -> str:
    return signing.public_key_document()["public_key"]


def _statements(document, number):
    section = next(s for s in document["techfile"]["sections"] if s["number"] == number)
    return [s["text"] for s in section["statements"]], section


def test_the_file_has_nine_sections_citing_evidence_and_verifies(document):
    assert verify_techfile(document, _key()) == []
    file = document["techfile"]
    assert [s["number"] for s in file["sections"]] == list(range(1, 10))
    assert file["classification"]["annex_iii_area"] == "essential-services"
    cited = {c for s in file["sections"] for st in s["statements"] for c in st["cites"]}
    assert cited <= set(file["evidence"]) == set(document["evidence"])
    for ident, document_digest in file["evidence"].items():
        assert techfile.digest(document["evidence"][ident]) == document_digest

    general, _ = _statements(document, 1)
    assert any("Risk tier: high (Annex III: Access to essential" in t for t in general)
    development, section = _statements(document, 2)
    assert any(t.startswith("Trained on adult@v1 (file SHA-256 ") for t in development)
    assert any(t.startswith("Fairness by sex on ") for t in development)
    # The data the fairness assessment ran on, and whether it is kept apart from the training data.
    evaluated = [t for t in development if t.startswith("The fairness assessment by sex ran on adult@v1")]
    assert evaluated == ["The fairness assessment by sex ran on adult@v1."]
    # (made here without the comparison a worker's assessment records, so it cannot be shown apart)
    assert (
        "the data of the fairness assessment by sex cannot be shown disjoint from the training data"
        in (section["missing"])
    )
    assert any(t.startswith("Differential privacy on adult@v1: 2 noisy release(s)") for t in development)
    assert any(REVIEW_COMMENT in t for t in development)
    assert any("Gate for production" in t and "signed" in t for t in development)
    oversight = next(a for a in section["authored"] if a["section"] == "human_oversight")
    assert oversight["fields"] == {"measures": "A loan officer reviews every score."}
    assert oversight["cites"] == ["datasheet:annex_iv:income@1@1"]
    assert "human_oversight.interpretation_aids is not written" in section["missing"]
    metrics, _ = _statements(document, 3)
    assert metrics == ["Metrics recorded at registration: accuracy 0.9."]
    bounds, _ = _statements(document, 4)
    assert any("demographic_parity_difference max 0.1" in t for t in bounds)
    changes, _ = _statements(document, 6)
    assert changes == ["income@1 is the first version of income."]
    _, conformity = _statements(document, 8)
    assert conformity["missing"] == [
        "declaration_of_conformity.reference is not written",
        "declaration_of_conformity.date is not written",
        "declaration_of_conformity.signatory is not written",
    ]


def _one_byte_changed(value):
    """The document with one character of its first string changed (depth first)."""
    if isinstance(value, str):
        return (value[:-1] + ("x" if value[-1:] != "x" else "y")) if value else "x", True
    if isinstance(value, dict):
        for key in sorted(value):
            changed, done = _one_byte_changed(value[key])
            if done:
                return {**value, key: changed}, True
    if isinstance(value, list):
        for index, item in enumerate(value):
            changed, done = _one_byte_changed(item)
            if done:
                return [*value[:index], changed, *value[index + 1 :]], True
    return value, False


def test_changing_one_byte_of_any_evidence_or_dropping_it_is_named(document):
    assert len(document["evidence"]) >= 8
    for ident in document["evidence"]:
        edited = copy.deepcopy(document)
        edited["evidence"][ident], done = _one_byte_changed(edited["evidence"][ident])
        assert done, ident
        problems = verify_techfile(edited, _key())
        assert f"evidence {ident} does not match the hash the file cites" in problems, (ident, problems)
        dropped = copy.deepcopy(document)
        del dropped["evidence"][ident]
        assert f"evidence {ident} is missing from the bundle" in verify_techfile(dropped, _key())


def test_an_edited_statement_or_another_key_fails_the_signature(document):
    edited = copy.deepcopy(document)
    edited["techfile"]["sections"][0]["statements"][0]["text"] = "A harmless model."
    assert verify_techfile(edited, _key()) == [SIGNATURE]
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    assert verify_techfile(document, base64.b64encode(raw).decode())[0].startswith(SIGNATURE)


def test_the_command_exits_0_for_the_file_and_1_naming_the_change(document, tmp_path, capsys):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(signing.public_key_document()))
    saved = tmp_path / "techfile.json"
    saved.write_text(json.dumps(document))
    assert mlgov_main(["verify-techfile", str(saved), "--public-key", str(key)]) == 0
    assert capsys.readouterr().out.startswith("valid: technical file of income@1 (9 sections, ")
    edited = copy.deepcopy(document)
    edited["evidence"]["artifact:model"]["sha256"] = "0" * 64
    saved.write_text(json.dumps(edited))
    assert mlgov_main(["verify-techfile", str(saved), "--public-key", str(key)]) == 1
    assert (
        "INVALID: evidence artifact:model does not match the hash the file cites" in capsys.readouterr().err
    )


def test_the_api_serves_it_to_those_who_export_reports(evidenced, acme, ada):
    url = reverse("model-technical-file", kwargs={"name": "income", "version": "1"})
    auditor = bearer(make_token(acme, ada, ["report:export"]))
    body = auditor.get(url).json()
    assert verify_techfile(body, _key()) == []
    assert bearer(make_token(acme, ada, ["model:read"])).get(url).status_code == 403
    missing = reverse("model-technical-file", kwargs={"name": "income", "version": "7"})
    assert auditor.get(missing).status_code == 404


def test_a_second_version_on_other_data_is_flagged_as_a_possibly_substantial_change(evidenced, acme, alice):
    frame = training_frame()
    data = store_bytes(acme, alice, frame.head(50).to_csv(index=False).encode(), "adult-v2.csv")
    record(
        acme, alice, {"type": "node", "kind": "DatasetVersion", "key": "adult@v2", "artifact": str(data.pk)}
    )
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(frame[["score", "sex"]], frame["label"])
    second = services.version_register(
        workspace=acme,
        actor=Actor(user=alice),
        name="income",
        version="2",
        artifact=str(store_bytes(acme, alice, sio.dumps(model), "income-2.skops").pk),
        metrics={"accuracy": 0.85},
        run={"key": "train-2", "job": "train"},
        datasets=["adult@v2"],
    )
    document = techfile.bundle(second)
    changes, _ = _statements(document, 6)
    assert changes[0] == (
        "Training data changed from adult@v1 to adult@v2: possibly a substantial modification."
    )
    flagged = "(past the threshold: possibly substantial)"
    assert changes[1] == f"Changed from income@1: accuracy 0.9 -> 0.85 {flagged}."
    assert verify_techfile(document, _key()) == []


def test_a_provenance_cut_at_the_result_limit_is_listed_as_missing(evidenced, settings):
    settings.LINEAGE_MAX_RESULT_NODES = 3
    document = techfile.bundle(evidenced)
    development, section = _statements(document, 2)
    assert any(t.startswith("Provenance: 3 lineage nodes upstream") for t in development)
    assert "the provenance holds more than 3 nodes; the nearest are listed" in section["missing"]
    assert verify_techfile(document, _key()) == []
