"""The technical file for people and for approval: its PDF lies inside its pages (pdftoppm, poppler's
word boxes, pypdf's text runs), its HTML escapes what it quotes, the coverage matrix names the
evidence behind each ISO/IEC 42001 and NIST AI RMF entry and the gaps, and an approval (with
separation of duties) becomes part of the file, current until the evidence it approved changes."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image
from pypdf import PdfReader

from core import signing
from core.actors import Actor
from core.errors import Forbidden
from core.models import AuditEvent
from governance import techfile
from governance.models import DatasheetKind, ModelVersion
from governance.techfile_approvals import techfile_approve
from governance.techfile_coverage import gaps
from governance.techfile_render import to_html, to_pdf
from tests.conftest import bearer, session
from tests.factories import make_datasheet, make_token, make_user
from tests.governance.reports.test_pdf import _runs_outside, _text, _tool, _words_outside


@pytest.fixture
def pdf(document) -> bytes:
    return to_pdf(document)


def test_the_pdf_renders_every_page_and_keeps_its_text_inside_the_margins(pdf, document, tmp_path):
    pdftoppm = _tool("pdftoppm")
    (tmp_path / "file.pdf").write_bytes(pdf)
    subprocess.run([pdftoppm, "-r", "40", "-png", "file.pdf", "page"], cwd=tmp_path, check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == len(PdfReader(io.BytesIO(pdf)).pages) >= 2
    for page in pages:
        with Image.open(page) as image:
            assert (np.asarray(image.convert("L")) < 200).mean() > 0.005, f"{page.name} is (nearly) blank"
    assert _runs_outside(pdf) == []
    assert _words_outside(pdf, tmp_path) == []
    text = _text(pdf)
    for section in document["techfile"]["sections"]:
        assert f"{section['number']}. {section['title']}" in text
    assert "A loan officer reviews every score." in text  # written by people, section 2
    assert "MEASURE 2.11" in text
    assert document["signature"][:40] in text.replace(" ", "")


def test_the_html_names_every_section_the_evidence_and_escapes_what_it_quotes(document):
    hostile = {**document, "techfile": {**document["techfile"]}}
    hostile["techfile"]["classification"] = {
        **hostile["techfile"]["classification"],
        "owner": "<script>x</script>",
    }
    page = to_html(hostile)
    assert "<script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    for section in document["techfile"]["sections"]:
        assert f"id='section-{section['number']}'" in page
    for ident in document["techfile"]["evidence"]:
        assert ident.replace("'", "&#x27;") in page


def test_the_coverage_matrix_cites_the_evidence_and_lists_the_gaps(document):
    rows = {(r["framework"].split()[0], r["control"]): r for r in document["techfile"]["coverage"]}
    fairness = rows[("NIST", "MEASURE 2.11")]["evidence"]
    assert fairness
    assert all(ident.startswith("job:") for ident in fairness)
    assert rows[("NIST", "MEASURE 2.10")]["evidence"]  # the DP summary of the training data
    assert any(e.startswith("privacy:budget:") for e in rows[("NIST", "MEASURE 2.10")]["evidence"])
    assert rows[("ISO/IEC", "A.7.5")]["evidence"] == ["provenance"]
    assert rows[("ISO/IEC", "A.9.4")]["evidence"] == ["classification.intended_purpose"]
    # Post-market monitoring is not written: a gap, saying what would close it.
    monitoring = rows[("NIST", "MANAGE 4.1")]
    assert monitoring["evidence"] == []
    assert monitoring["needs"] == "write the post-market monitoring plan"
    assert any("MANAGE 4.1" in gap for gap in gaps(document["techfile"]["coverage"]))
    # Every cited id is evidence the bundle carries (or a field of the file).
    for row in document["techfile"]["coverage"]:
        for ident in row["evidence"]:
            assert ident in document["evidence"] or ident.split(".")[0] in (
                "classification",
                "annex_iv",
                "approvals",
            )


def test_an_approval_by_a_reviewer_becomes_part_of_the_file_until_its_evidence_changes(
    evidenced, document, acme, alice, bob, ada
):
    # Separation of duties: not the version's author, not who wrote the Annex IV sections, not a
    # data scientist at all; the refusals say why.
    with pytest.raises(Forbidden, match="only a compliance reviewer or an admin"):
        techfile_approve(workspace=acme, actor=Actor(user=alice), version=evidenced)
    ModelVersion.objects.filter(pk=evidenced.pk).update(author=ada)
    with pytest.raises(Forbidden, match="the author of a model version"):
        techfile_approve(
            workspace=acme, actor=Actor(user=ada), version=ModelVersion.objects.get(pk=evidenced.pk)
        )
    ModelVersion.objects.filter(pk=evidenced.pk).update(author=alice)
    make_datasheet(
        acme, ada, DatasheetKind.ANNEX_IV, content={"general_description": {"intended_purpose": "credit"}}
    )
    with pytest.raises(Forbidden, match="written sections"):
        techfile_approve(workspace=acme, actor=Actor(user=ada), version=evidenced)
    approval = techfile_approve(workspace=acme, actor=Actor(user=bob), version=evidenced, comment="complete")
    assert techfile_approve(workspace=acme, actor=Actor(user=bob), version=evidenced).pk == approval.pk
    key = signing.public_key_document()["public_key"]
    assert signing.verify(approval.statement, approval.signature, key)
    event = AuditEvent.objects.filter(workspace=acme, action="techfile.approve").get()
    assert event.actor == "user:bob"
    assert event.payload["approval"] == str(approval.pk)

    now = techfile.bundle(evidenced)["techfile"]
    assert [(a["approved_by"], a["current"], a["comment"]) for a in now["approvals"]] == [
        ("bob", True, "complete")
    ]
    assert techfile.approved_digest(now["evidence"]) == approval.evidence_digest
    assert "approvals" in {e for r in now["coverage"] if r["control"] == "MANAGE 1.1" for e in r["evidence"]}
    # New evidence (a model card revision): the approval stays in the file, no longer current.
    make_datasheet(acme, alice, content={"model_details": {"name": "income", "version": "1", "owners": "x"}})
    later = techfile.bundle(evidenced)["techfile"]
    assert [(a["approved_by"], a["current"]) for a in later["approvals"]] == [("bob", False)]
    assert "Approved by bob (compliance_reviewer)" in to_html(techfile.bundle(evidenced))


def test_the_api_exports_html_and_pdf_and_takes_approvals(evidenced, acme, ada, alice, bob):
    url = reverse("model-technical-file", kwargs={"name": "income", "version": "1"})
    auditor = bearer(make_token(acme, ada, ["report:export"]))
    assert auditor.get(url, {"export": "html"})["Content-Type"] == "text/html; charset=utf-8"
    pdf = auditor.get(url, {"export": "pdf"})
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert 'filename="technical-file-income-1.pdf"' in pdf["Content-Disposition"]
    wrong = auditor.get(url, {"export": "docx"})
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "export"
    approvals = reverse("model-technical-file-approvals", kwargs={"name": "income", "version": "1"})
    assert session(alice).post(approvals, {"comment": "mine"}, format="json").status_code == 403
    approved = session(bob).post(approvals, {"comment": "ok"}, format="json")
    assert approved.status_code == 201, approved.content
    assert approved.json()["approved_by"] == "bob"
    assert auditor.get(url).json()["techfile"]["approvals"][0]["current"] is True


def test_the_dashboard_page_shows_completeness_gaps_and_approves(evidenced, acme, bob, alice):
    url = reverse("dashboard-techfile", kwargs={"slug": "acme", "name": "income", "version": "1"})
    client = session(bob)
    page = client.get(url).content.decode()
    assert "9. Post-market monitoring (Article 72)" in page
    assert "MANAGE 4.1" in page
    assert "Not approved." in page
    answer = client.post(url, {"comment": "looks complete"})
    assert answer.status_code == 302
    page = client.get(url).content.decode()
    assert "bob (compliance_reviewer)" in page
    assert "looks complete" in page
    assert client.get(url, {"export": "pdf"})["Content-Type"] == "application/pdf"
    assert session(alice).post(url, {"comment": "mine"}).status_code == 403  # a data scientist
    outsider = session(make_user("mallory"))
    assert outsider.get(url).status_code == 404  # not a member of acme: no such page
    assert outsider.get(url, {"export": "json"}).status_code == 404
