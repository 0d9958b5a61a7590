"""Datasheets: validated by JSON Schema (errors name the field), partial ones save with their
completeness, evidence fills sections, exports as Markdown and HTML."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import AuditEvent
from tests.conftest import bearer
from tests.factories import make_token
from tests.governance.conftest import FULL_CARD


def _client(acme, alice):
    return bearer(make_token(acme, alice, ["datasheet:write", "model:read"]))


CARD = reverse("model-card", kwargs={"name": "income", "version": "1"})


def test_schema_errors_name_the_field(acme, alice, registered):
    client = _client(acme, alice)
    response = client.put(
        CARD,
        {"content": {"model_details": {"nmae": "typo"}, "intended_use": "not an object", "mood": {}}},
        format="json",
    )
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"content.model_details.nmae", "content.intended_use", "content.mood"}


def test_a_partial_datasheet_saves_and_reports_completeness_per_section(acme, alice, registered):
    client = _client(acme, alice)
    body = client.put(
        CARD, {"content": {"model_details": {"name": "income", "version": "1", "owners": []}}}, format="json"
    ).json()
    sections = body["completeness"]["sections"]
    assert sections["model_details"]["filled"] == 2  # an empty list is not filled
    assert "owners" in sections["model_details"]["missing"]
    assert sections["intended_use"]["completeness"] == 0
    # Evidence fills training data from the lineage (TRAINED_ON), marked as such.
    assert sections["training_data"]["filled_from"] == ["lineage"]
    assert body["content"]["training_data"]["datasets"] == ["adult@v1"]
    assert body["revision"] == 1
    # One completeness everywhere: the audit event says what the API (and the page, and the CLI) say,
    # evidence-filled sections included.
    pushed = AuditEvent.objects.get(workspace=acme, action="model_card.push")
    assert pushed.payload == {"revision": 1, "completeness": body["completeness"]["overall"]}
    assert client.put(CARD, {"content": FULL_CARD}, format="json").json()["revision"] == 2


def test_markdown_with_front_matter_and_exports(acme, alice, registered):
    client = _client(acme, alice)
    document = (
        "---\nmodel_details:\n  name: income\n  description: predicts <income>\n---\n"
        "# Notes\nTrained on census data.\n"
    )
    body = client.put(CARD, {"document": document, "format": "markdown"}, format="json").json()
    assert body["written"]["notes"].startswith("# Notes")
    markdown = client.get(CARD + "?export=markdown")
    assert markdown["Content-Type"].startswith("text/markdown")
    text = markdown.content.decode()
    assert "# Model card: income@1" in text
    assert "predicts <income>" in text
    page = client.get(CARD + "?export=html").content.decode()
    assert "predicts &lt;income&gt;" in page  # escaped
    assert "<script" not in page


def test_bad_yaml_is_a_400(acme, alice, registered):
    response = _client(acme, alice).put(
        CARD, {"document": "model_details: [unclosed", "format": "yaml"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "document"


def test_dataset_datasheet_composition_from_the_dp_summary(acme, ada, alice, registered):
    from core.actors import Actor
    from lineage.models import Node
    from privacy import services as privacy

    node = Node.objects.get(key="adult@v1")
    node.properties = {"privacy": {"unit": 1, "public_rows": 600, "bounds": {"score": [0, 1]}}}
    node.save()
    privacy.budget_set(workspace=acme, actor=Actor(user=ada), node=node, epsilon=2.0, delta=0.0)
    privacy.summary_request(workspace=acme, actor=Actor(user=alice), node=node, epsilon=1.0)
    client = _client(acme, alice)
    url = reverse("dataset-datasheet", kwargs={"name": "adult", "version": "v1"})
    body = client.put(url, {"content": {"motivation": {"purpose": "census research"}}}, format="json").json()
    composition = body["completeness"]["sections"]["composition"]
    assert composition["filled_from"] == ["dp_summary"]
    assert abs(body["content"]["composition"]["count"] - 600) < 50
    # Every reader is told the numbers are noisy, and how noisy; the content keeps only its fields.
    note = body["notes"]["composition"]
    assert note.startswith("Noisy numbers: a differentially private summary (epsilon 1 in all)")
    # Each number's own 95% bound: the count's, and the mean's.
    summary = privacy.latest_summary(node)
    bounds = {s["statistic"]: s["accuracy"]["half_width"] for s in summary["statistics"]}
    assert f"the count within ±{bounds['count']:.4g}" in note
    assert f"the mean of score within ±{bounds['mean']:.4g}" in note
    assert "note" not in body["content"]["composition"]


def test_a_consistent_summary_shows_histograms_that_add_up_to_its_count(acme, ada, alice, registered):
    """Asked for, each histogram is shown adjusted to the summary's count, never negative; the release
    as made (clamped) stays stored, and only the newest summary's releases are shown."""
    from core.actors import Actor
    from lineage.models import Node
    from privacy import services as privacy
    from privacy.models import PrivacyRelease

    node = Node.objects.get(key="adult@v1")
    node.properties = {"privacy": {"unit": 1, "categories": {"sex": ["F", "M", "nobody"]}}}
    node.save()
    privacy.budget_set(workspace=acme, actor=Actor(user=ada), node=node, epsilon=20.0, delta=0.0)
    privacy.summary_request(workspace=acme, actor=Actor(user=alice), node=node, epsilon=0.25)
    privacy.summary_request(workspace=acme, actor=Actor(user=alice), node=node, epsilon=0.5, consistent=True)
    summary = privacy.latest_summary(node)
    assert [s["statistic"] for s in summary["statistics"]] == ["count", "histogram"]
    assert summary["epsilon"] == pytest.approx(0.5)
    count, histogram = summary["statistics"]
    assert sum(histogram["value"].values()) == count["value"]
    assert min(histogram["value"].values()) >= 0
    assert histogram["adjusted_to_count"] is True
    stored = PrivacyRelease.objects.filter(query__statistic="histogram").latest("created_at")
    assert histogram["released_value"] == stored.value
    assert stored.query["consistent_total"] is True
    client = _client(acme, alice)
    url = reverse("dataset-datasheet", kwargs={"name": "adult", "version": "v1"})
    body = client.put(url, {"content": {"motivation": {"purpose": "census"}}}, format="json").json()
    note = body["notes"]["composition"]
    assert "each count of the histogram of sex within ±" in note
    assert "The histogram of sex was adjusted to add up to the count" in note
    assert body["content"]["composition"]["instances"]["histogram of sex"] == histogram["value"]
    # Asked again, the same summary is answered from the ledger (nothing spent), shown as now asked.
    spent = PrivacyRelease.objects.count()
    privacy.summary_request(workspace=acme, actor=Actor(user=alice), node=node, epsilon=0.5)
    assert PrivacyRelease.objects.count() == spent
    again = privacy.latest_summary(node)["statistics"][1]
    assert again["value"] == histogram["released_value"]
    assert "adjusted_to_count" not in again
