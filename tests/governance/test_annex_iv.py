"""The authored sections of a model version's EU AI Act technical documentation (Annex IV): what
only people can say (intended purpose and foreseeable misuse, human oversight, risk management,
harmonised standards, the declaration of conformity, post-market monitoring), kept like a model card:
JSON Schema with errors naming the field, revisions, completeness with what is missing per section,
YAML and Markdown in and out, audited."""

from __future__ import annotations

from django.urls import reverse

from core.models import AuditEvent
from governance.datasheets import ANNEX_IV_SECTIONS
from governance.models import Datasheet, DatasheetKind
from tests.conftest import bearer
from tests.factories import make_token

ANNEX = reverse("model-annex-iv", kwargs={"name": "income", "version": "1"})

DOCUMENT = """---
general_description:
  intended_purpose: Estimate whether income exceeds $50,000, as one input to a credit officer.
  provider: Example Bank, model risk team
  foreseeable_misuse: Deciding credit without a person reviewing the score.
human_oversight:
  measures: A loan officer reviews every score and may override it.
  interpretation_aids: SHAP explanations on the review page.
  intervention_and_stop: The officer declines to use the score; the service can be withdrawn.
post_market_monitoring:
  plan: Monthly fairness assessment on the latest applications.
---
Written by the model risk team.
"""


def _client(acme, alice):
    return bearer(make_token(acme, alice, ["datasheet:write", "model:read"]))


def test_authored_sections_are_stored_as_revisions_with_completeness_and_audited(acme, alice, registered):
    client = _client(acme, alice)
    response = client.put(ANNEX, {"document": DOCUMENT, "format": "markdown"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["kind"], body["subject"], body["revision"]) == ("annex_iv", "income@1", 1)
    sections = body["completeness"]["sections"]
    assert set(sections) == set(ANNEX_IV_SECTIONS)
    assert sections["human_oversight"]["completeness"] == 1.0
    general = sections["general_description"]
    assert (general["filled"], general["fields"]) == (3, 7)
    assert general["missing"] == ["deployment_forms", "hardware", "user_interface", "instructions_for_use"]
    assert sections["declaration_of_conformity"]["missing"] == ["reference", "date", "signatory"]
    filled = sum(s["filled"] for s in sections.values())
    total = sum(len(f) for f in ANNEX_IV_SECTIONS.values())
    assert body["completeness"]["overall"] == round(filled / total, 4)
    assert body["written"]["notes"].strip() == "Written by the model risk team."

    event = AuditEvent.objects.get(workspace=acme, action="annex_iv.push")
    assert event.target == "annex_iv:income@1"
    assert event.payload == {"revision": 1, "completeness": body["completeness"]["overall"]}

    again = client.put(
        ANNEX, {"content": {"declaration_of_conformity": {"reference": "DoC-2026-014"}}}, format="json"
    )
    assert again.json()["revision"] == 2
    assert client.get(ANNEX).json()["revision"] == 2
    # The model card is another document of the same version, untouched.
    assert not Datasheet.objects.filter(kind=DatasheetKind.MODEL_CARD).exists()


def test_an_unknown_section_or_field_is_refused_naming_it_and_nothing_is_stored(acme, alice, registered):
    client = _client(acme, alice)
    response = client.put(
        ANNEX,
        {"content": {"risk_management": {"measures": "x", "mesures": "typo"}, "model_details": {}}},
        format="json",
    )
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {
        "content.risk_management.mesures",
        "content.model_details",
    }
    assert not Datasheet.objects.filter(kind=DatasheetKind.ANNEX_IV).exists()
    assert not AuditEvent.objects.filter(workspace=acme, action="annex_iv.push").exists()
    assert client.get(ANNEX).status_code == 404


def test_exports_as_markdown_and_html_with_the_missing_fields(acme, alice, registered):
    client = _client(acme, alice)
    client.put(ANNEX, {"document": DOCUMENT, "format": "markdown"}, format="json")
    markdown = client.get(ANNEX + "?export=markdown")
    assert markdown["Content-Type"].startswith("text/markdown")
    text = markdown.content.decode()
    assert "Technical documentation (EU AI Act Annex IV, authored sections)" in text
    assert "A loan officer reviews every score and may override it." in text
    assert "Missing: Deployment forms, Hardware, User interface, Instructions for use" in text
    assert "Missing: Reference, Date, Signatory" in text
    html = client.get(ANNEX + "?export=html").content.decode()
    assert "Deciding credit without a person reviewing the score." in html
    assert "<p class='meta'>Missing: Reference, Date, Signatory</p>" in html


def test_only_registered_versions_have_one(acme, alice, registered):
    client = _client(acme, alice)
    missing = reverse("model-annex-iv", kwargs={"name": "income", "version": "9"})
    assert client.put(missing, {"content": {}}, format="json").status_code == 404
    reader = bearer(make_token(acme, alice, ["model:read"]))
    assert reader.put(ANNEX, {"content": {}}, format="json").status_code == 403
