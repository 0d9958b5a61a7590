"""A model's risk classification (EU AI Act): its tier, for a high-risk model the Annex III area that
makes it so, its intended purpose and owner. Set by a policy writer through the API, audited once per
change, refused naming the field when it does not hold together, and shown and filtered in the
inventory."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import AuditEvent
from governance.models import RegisteredModel
from tests.conftest import session

pytestmark = pytest.mark.django_db

PURPOSE = "Estimate whether income exceeds $50,000, as one input to a credit officer's assessment."


def _url():
    return reverse("model-detail", kwargs={"name": "income"})


def test_a_high_risk_classification_is_set_read_back_and_audited_once(acme, ada, registered):
    admin = session(ada, acme)
    body = {
        "risk_tier": "high",
        "annex_iii_area": "essential-services",
        "intended_purpose": PURPOSE,
        "owner": "credit-analytics",
    }
    response = admin.patch(_url(), body, format="json")
    assert response.status_code == 200, response.content
    shown = response.json()
    assert {k: shown[k] for k in body} == body
    assert {k: admin.get(_url()).json()[k] for k in body} == body
    event = AuditEvent.objects.get(workspace=acme, action="model.update")
    assert event.target == "model:income"
    assert event.payload["changes"]["annex_iii_area"] == {"from": "", "to": "essential-services"}
    assert event.payload["changes"]["intended_purpose"] == {"from": "", "to": PURPOSE}
    assert event.payload["changes"]["owner"] == {"from": "", "to": "credit-analytics"}
    assert admin.patch(_url(), body, format="json").status_code == 200
    assert AuditEvent.objects.filter(workspace=acme, action="model.update").count() == 1


def test_an_annex_iii_area_on_a_model_not_high_risk_is_refused_naming_the_field(acme, ada, registered):
    admin = session(ada, acme)
    refused = admin.patch(_url(), {"risk_tier": "limited", "annex_iii_area": "employment"}, format="json")
    assert refused.status_code == 400
    assert [e["field"] for e in refused.json()["errors"]] == ["annex_iii_area"]
    assert "high-risk" in refused.json()["errors"][0]["message"]
    model = RegisteredModel.objects.get(workspace=acme, name="income")
    assert (model.risk_tier, model.annex_iii_area) == ("", "")  # nothing half-written
    assert not AuditEvent.objects.filter(workspace=acme, action="model.update").exists()
    unknown = admin.patch(_url(), {"annex_iii_area": "weather"}, format="json")
    assert unknown.status_code == 400
    assert [e["field"] for e in unknown.json()["errors"]] == ["annex_iii_area"]


def test_leaving_the_high_tier_clears_the_area_as_a_recorded_change(acme, ada, registered):
    admin = session(ada, acme)
    admin.patch(_url(), {"risk_tier": "high", "annex_iii_area": "employment"}, format="json")
    response = admin.patch(_url(), {"risk_tier": "limited"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["risk_tier"], response.json()["annex_iii_area"]) == ("limited", "")
    last = AuditEvent.objects.filter(workspace=acme, action="model.update").order_by("-seq").first()
    assert last.payload["changes"] == {
        "risk_tier": {"from": "high", "to": "limited"},
        "annex_iii_area": {"from": "employment", "to": ""},
    }


def test_the_inventory_shows_the_classification_and_filters_by_tier(acme, ada, registered):
    admin = session(ada, acme)
    page = reverse("dashboard-inventory", kwargs={"slug": acme.slug})
    unset = admin.get(page, {"tier": "unset"}).content.decode()
    assert "income" in unset
    assert "not set" in unset
    assert "No registered model matches these filters" in admin.get(page, {"tier": "high"}).content.decode()

    admin.patch(_url(), {"risk_tier": "high", "owner": "credit-analytics"}, format="json")
    high = admin.get(page, {"tier": "high"}).content.decode()
    assert '<span class="tier high">high</span>' in high
    assert "Annex III area not set" in high
    assert "owner: credit-analytics" in high
    assert 'value="high" selected' in high

    admin.patch(_url(), {"annex_iii_area": "essential-services"}, format="json")
    shown = admin.get(page).content.decode()
    area = "Access to essential private services and essential public services and benefits"
    assert f"Annex III: {area}" in shown
    assert "No registered model matches" in admin.get(page, {"tier": "unset"}).content.decode()
    assert "No registered model matches" in admin.get(page, {"tier": "minimal"}).content.decode()
