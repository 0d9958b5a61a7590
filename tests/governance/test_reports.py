"""Lineage-and-audit reports: rendered by a (here eager) worker with progress, the JSON bundle
verifies offline and fails once touched, the PDF holds the model's name, the gate results and the
provenance."""

from __future__ import annotations

import copy
import io
import json
import re

from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from core import signing
from core.actors import Actor
from governance import services
from governance.models import Report
from mlgov.cli import main as mlgov_main
from mlgov.client import verify_report
from tests.conftest import bearer, session
from tests.factories import PASSWORD, make_token
from tests.governance.conftest import POLICY


def _read(artifact) -> bytes:
    with default_storage.open(artifact.storage_key, "rb") as handle:
        return handle.read()


def _report(acme, ada, alice, carol, registered, eager_celery, django_capture_on_commit_callbacks):
    services.policy_upload(workspace=acme, actor=Actor(user=ada), document=POLICY)
    services.gate_check(workspace=acme, actor=Actor(user=alice), version=registered, stage="production")
    client = bearer(make_token(acme, carol, ["report:export", "artifact:read"]))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("model-reports", kwargs={"name": "income", "version": "1"}))
    assert response.status_code == 202, response.content
    body = client.get(response["Location"]).json()
    assert body["state"] == "succeeded", body["error"]
    assert body["progress"] == 1.0
    # The version's reports are listed where they are asked for; the bundle downloads as an artifact.
    listed = client.get(reverse("model-reports", kwargs={"name": "income", "version": "1"})).json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]
    bundle = client.get(reverse("artifact-content", kwargs={"artifact_id": body["bundle"]}))
    assert bundle.status_code == 200
    assert (
        bearer(make_token(acme, alice, ["model:read"]))
        .get(reverse("model-reports", kwargs={"name": "income", "version": "1"}))
        .status_code
        == 403
    )
    return Report.objects.get(pk=body["id"])


def test_the_bundle_verifies_offline_and_fails_when_touched(
    acme, ada, alice, carol, registered, eager_celery, django_capture_on_commit_callbacks, tmp_path
):
    report = _report(acme, ada, alice, carol, registered, eager_celery, django_capture_on_commit_callbacks)
    document = json.loads(_read(report.bundle))
    key = signing.public_key_document()["public_key"]
    assert verify_report(document, key) == []
    assert document["report"]["audit_events"], "the version's audit events are in the bundle"
    assert document["report"]["gate_decisions"][0]["statement"]["passed"] is False
    assert "entity" in document["report"]["provenance"]

    forged = copy.deepcopy(document)
    forged["report"]["stage"] = "production"
    assert "the report's signature does not match" in verify_report(forged, key)[0]
    tampered = copy.deepcopy(document)
    tampered["report"]["audit_events"][0]["document"]["actor"] = "user:mallory"
    problems = verify_report(tampered, key)
    assert any("its content does not match its hash" in p for p in problems)

    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(document))
    (tmp_path / "key.json").write_text(json.dumps(signing.public_key_document()))
    assert mlgov_main(["verify-report", str(saved), "--public-key", str(tmp_path / "key.json")]) == 0
    saved.write_text(json.dumps(forged))
    assert mlgov_main(["verify-report", str(saved), "--public-key", str(tmp_path / "key.json")]) == 1


def test_the_pdf_and_html_hold_the_name_gate_results_and_provenance(
    acme, ada, alice, carol, registered, eager_celery, django_capture_on_commit_callbacks
):
    report = _report(acme, ada, alice, carol, registered, eager_celery, django_capture_on_commit_callbacks)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(_read(report.pdf))).pages)
    assert "income@1" in text
    assert "FAILED" in text
    assert "production-readiness/reviewers" in text
    assert "adult@v1" in text  # provenance: the training data
    page = _read(report.html).decode()
    # Each form carries its own media type (the HTML was stored as text/csv, judged from its commas).
    assert (report.bundle.media_type, report.html.media_type, report.pdf.media_type) == (
        "application/json",
        "text/html; charset=utf-8",
        "application/pdf",
    )
    client = bearer(make_token(acme, carol, ["artifact:read"]))
    served = client.get(reverse("artifact-content", kwargs={"artifact_id": report.html_id}))
    assert served["Content-Type"] == "text/html; charset=utf-8"
    assert "<script" not in page
    assert "income@1" in page
    assert "production-readiness/card" in page


def test_auditors_export_from_the_dashboard_and_others_cannot(
    acme, ada, alice, carol, registered, eager_celery, django_capture_on_commit_callbacks
):
    url = reverse("dashboard-report-export", kwargs={"slug": "acme", "name": "income", "version": "1"})
    auditor = session(carol, acme)
    with django_capture_on_commit_callbacks(execute=True):
        response = auditor.post(url)
    assert response.status_code == 302
    page = auditor.get(response["Location"]).content.decode()
    assert "succeeded" in page
    assert 'id="download-bundle"' in page
    denied = session(alice, acme).post(url, follow=True)
    assert "cannot export reports" in denied.content.decode()
    assert Report.objects.count() == 1
    # The report page, like the API's report endpoints, is for roles that export reports.
    report_url = response["Location"]
    assert session(alice, acme).get(report_url).status_code == 403
    assert auditor.get(report_url).status_code == 200


def _browser(user):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_an_auditor_asks_for_a_report_from_the_versions_reports_page_with_its_csrf_token(
    acme, ada, alice, carol, registered, eager_celery, django_capture_on_commit_callbacks
):
    url = reverse("dashboard-version-reports", kwargs={"slug": "acme", "name": "income", "version": "1"})
    auditor = _browser(carol)
    page = auditor.get(url).content.decode()
    assert "No report yet" in page
    form = re.search(r'<form method="post" action="([^"]+)">(?:(?!</form>).)*id="request-report"', page, re.S)
    assert form, page
    assert 'name="csrfmiddlewaretoken"' in form[0]
    assert auditor.post(form[1]).status_code == 403  # no CSRF token: refused
    token = auditor.cookies["csrftoken"].value
    with django_capture_on_commit_callbacks(execute=True):
        response = auditor.post(form[1], {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    report = Report.objects.get()
    listed = auditor.get(url).content.decode()
    row = re.search(rf'<tr id="report-{report.pk}">.*?</tr>', listed, re.S)
    assert row, listed
    assert "succeeded" in row[0]
    assert report.created_at.strftime("%Y-%m-%d %H:%M:%S") in row[0]
    for artifact in (report.bundle_id, report.html_id, report.pdf_id):
        assert f"/api/v1/artifacts/{artifact}/content?workspace=acme" in row[0]
    assert "carol" in row[0]


def test_the_workspace_reports_page_lists_every_version_and_is_linked_from_the_navigation(
    acme, ada, alice, carol, registered, eager_celery, django_capture_on_commit_callbacks
):
    from tests.factories import make_model_version, make_report

    other = make_model_version(acme, alice, "churn", "3", datasets=("adult@v1",))
    with django_capture_on_commit_callbacks(execute=True):
        first = make_report(registered, carol)
    second = make_report(other, carol)  # not sent to a worker: still queued
    auditor = _browser(carol)
    home = auditor.get(reverse("dashboard-inventory", kwargs={"slug": "acme"})).content.decode()
    url = reverse("dashboard-reports", kwargs={"slug": "acme"})
    assert f'<a href="{url}">Reports</a>' in home
    page = auditor.get(url).content.decode()
    rows = re.findall(r'<tr id="report-([0-9a-f-]+)">', page)
    assert rows == [str(second.pk), str(first.pk)]  # newest first
    assert "churn@3" in page
    assert "income@1" in page
    assert "queued" in page
    assert 'id="reports-live" aria-live="polite" data-live-every=' in page  # a report is still being made
    assert "<meta http-equiv" not in page  # followed in place, not by reloading the page
    assert 'id="request-report"' not in page  # asked for from a version's page
    # Other roles neither see the link nor the page.
    scientist = _browser(alice)
    assert (
        f'<a href="{url}">Reports</a>'
        not in scientist.get(reverse("dashboard-inventory", kwargs={"slug": "acme"})).content.decode()
    )
    assert scientist.get(url).status_code == 403
    version_url = reverse(
        "dashboard-version-reports", kwargs={"slug": "acme", "name": "income", "version": "1"}
    )
    assert scientist.get(version_url).status_code == 403
    missing = reverse("dashboard-version-reports", kwargs={"slug": "acme", "name": "income", "version": "9"})
    assert auditor.get(missing).status_code == 404


def test_the_reports_page_reads_the_same_number_of_queries_for_one_report_or_many(
    acme, carol, registered, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import make_report

    auditor = _browser(carol)
    url = reverse("dashboard-reports", kwargs={"slug": "acme"})
    make_report(registered, carol)
    with CaptureQueriesContext(connection) as one:
        assert auditor.get(url).status_code == 200
    for _ in range(4):
        make_report(registered, carol)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert auditor.get(url).content.decode().count('<tr id="report-') == 5


def test_the_request_page_links_to_the_versions_reports(acme, ada, alice, carol, registered):
    from tests.factories import make_promotion_request

    promotion = make_promotion_request(registered, alice)
    page = (
        _browser(carol)
        .get(reverse("dashboard-request", kwargs={"slug": "acme", "request_id": promotion.pk}))
        .content.decode()
    )
    url = reverse("dashboard-version-reports", kwargs={"slug": "acme", "name": "income", "version": "1"})
    assert f'<a href="{url}" id="version-reports">' in page
