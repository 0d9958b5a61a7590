"""The technical file for people: one self-contained HTML page (inline styles, no scripts, every value
escaped) and an A4 PDF (the reports' writer, which keeps every line inside the margins), both drawn
from the signed bundle alone (governance/techfile.py): the classification, the nine sections with
their statements and the evidence each cites, the sections people wrote with their completeness,
what is missing, the coverage matrix, the approvals, and how to verify the JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpResponse, JsonResponse

from governance.datasheets import _text
from governance.reports.page import STYLE, _e, _table
from governance.reports.pdf import ReportPDF

EXTRA_STYLE = (
    "main{overflow-wrap:anywhere}ol.statements li{margin:.25rem 0}.cites{color:#4b5563;font-size:.85rem}"
    "ul.missing li{color:#a11}.gap{color:#a11;font-weight:600}.covered{color:#116b2f;font-weight:600}"
)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _meta_rows(techfile: Mapping[str, Any]) -> list[list[str]]:
    classification = techfile["classification"]
    return [
        ["Workspace", techfile["workspace"]],
        ["Stage", techfile["stage"]],
        ["Model file SHA-256", techfile["artifact_sha256"]],
        ["Risk tier", classification.get("risk_tier") or "not set"],
        ["Annex III area", classification.get("annex_iii_area") or "none"],
        ["Intended purpose", classification.get("intended_purpose") or "not stated"],
        ["Owner", classification.get("owner") or "not named"],
        ["Generated", techfile["generated_at"]],
        ["Signed with key", techfile["key_id"]],
    ]


def _approval_text(approval: Mapping[str, Any]) -> str:
    state = "current" if approval.get("current") else "for an earlier state of the evidence"
    comment = f': "{approval["comment"]}"' if approval.get("comment") else ""
    who = f"{approval['approved_by']} ({approval['role']})"
    return f"Approved by {who} on {approval['approved_at']}, {state}{comment}"


# --- HTML ------------------------------------------------------------------------------------------------


def _html_section(section: Mapping[str, Any]) -> list[str]:
    number = section["number"]
    parts = [f"<h2 id='section-{number}'>{number}. {_e(section['title'])}</h2>"]
    if section["statements"]:
        parts.append("<ol class='statements'>")
        for statement in section["statements"]:
            cites = ", ".join(f"<code>{_e(c)}</code>" for c in statement["cites"])
            parts.append(
                f"<li>{_e(statement['text'])}"
                + (f" <span class='cites'>Evidence: {cites}</span>" if cites else "")
                + "</li>"
            )
        parts.append("</ol>")
    for written in section["authored"]:
        parts.append(
            f"<h3>{_e(_label(written['section']))} <span class='muted'>(written by people: "
            f"{written['completeness']:.0%} complete)</span></h3>"
        )
        if written["fields"]:
            parts.append("<dl class='fields'>")
            parts += [
                f"<dt>{_e(_label(k))}</dt><dd>{_e(_text(v))}</dd>" for k, v in written["fields"].items()
            ]
            parts.append("</dl>")
    if section["missing"]:
        parts.append("<h3>Missing</h3><ul class='missing'>")
        parts += [f"<li>{_e(item)}</li>" for item in section["missing"]]
        parts.append("</ul>")
    elif not section["statements"] and not section["authored"]:
        parts.append("<p class='muted'>Nothing recorded.</p>")
    return parts


def _html_coverage(techfile: Mapping[str, Any]) -> list[str]:
    rows = []
    for control in techfile.get("coverage", []):
        status = (
            "<span class='covered'>supported</span>"
            if control["evidence"]
            else "<span class='gap'>gap</span>"
        )
        rows.append(
            [
                _e(control["framework"]),
                f"<code>{_e(control['control'])}</code>",
                _e(control["title"]),
                status,
                _e(", ".join(control["evidence"]) or control["needs"]),
            ]
        )
    return [
        "<h2 id='coverage'>Coverage: ISO/IEC 42001 Annex A and NIST AI RMF</h2>",
        "<p>Which evidence in this file supports each control or subcategory; a gap names what is "
        "needed.</p>",
        _table(["Framework", "Control", "Title", "Status", "Evidence, or what is needed"], rows, cls="fixed"),
    ]


def to_html(document: dict[str, Any]) -> str:
    techfile = document["techfile"]
    name = f"{techfile['model']}@{techfile['version']}"
    nav = " · ".join(
        f"<a href='#section-{s['number']}'>{s['number']}. {_e(s['title'])}</a>" for s in techfile["sections"]
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Technical file: {_e(name)}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body><main>",
        f"<h1>Technical file: {_e(name)}</h1>",
        "<p>The technical documentation of the EU AI Act (Article 11, Annex IV), generated from the "
        "evidence the service holds; each statement names the evidence it rests on.</p>",
        "<dl class='fields'>"
        + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in _meta_rows(techfile))
        + "</dl>",
        f"<nav aria-label='Sections'>{nav} · <a href='#coverage'>Coverage</a> · "
        "<a href='#approvals'>Approvals</a> · <a href='#verification'>Verification</a></nav>",
    ]
    for section in techfile["sections"]:
        parts += _html_section(section)
    parts += _html_coverage(techfile)
    parts.append("<h2 id='approvals'>Approvals</h2>")
    approvals = techfile.get("approvals", [])
    parts += [f"<p>{_e(_approval_text(a))}</p>" for a in approvals] or ["<p class='fail'>Not approved.</p>"]
    parts.append(
        "<h2 id='verification'>Verification</h2><p>The JSON bundle this page was drawn from is signed "
        f"(Ed25519, key {_e(document['key_id'])}) and carries every cited document; check it offline "
        "with <code>mlgov verify-techfile techfile.json --public-key key.json</code>, which names any "
        "evidence that is missing or changed.</p>"
    )
    parts.append(
        _table(
            ["Evidence", "SHA-256 of its canonical JSON"],
            (
                [f"<code>{_e(k)}</code>", f"<code class='hash'>{_e(v)}</code>"]
                for k, v in techfile["evidence"].items()
            ),
            cls="fixed",
        )
    )
    parts.append(
        f"<p>Signature: <code class='hash'>{_e(document['signature'])}</code></p></main></body></html>"
    )
    return "".join(p for p in parts if p)


# --- PDF -------------------------------------------------------------------------------------------------


def _pdf_section(pdf: ReportPDF, section: Mapping[str, Any]) -> None:
    pdf.heading(f"{section['number']}. {section['title']}")
    for index, statement in enumerate(section["statements"], start=1):
        pdf.para(f"{index}. {statement['text']}")
        if statement["cites"]:
            pdf.para("Evidence: " + ", ".join(statement["cites"]), size=7.5, grey=True)
    for written in section["authored"]:
        pdf.heading(
            f"{_label(written['section'])} (written by people: {written['completeness']:.0%} complete)", 4
        )
        pdf.fields([(_label(k), _text(v)) for k, v in written["fields"].items()])
    if section["missing"]:
        pdf.heading("Missing", 4)
        for item in section["missing"]:
            pdf.para(f"- {item}", size=8.5)
    elif not section["statements"] and not section["authored"]:
        pdf.para("Nothing recorded.", grey=True)


def to_pdf(document: dict[str, Any]) -> bytes:
    techfile = document["techfile"]
    name = f"{techfile['model']}@{techfile['version']}"
    pdf = ReportPDF(f"Technical file of {name}")
    pdf.add_page()
    pdf.heading(f"Technical file: {name}", 1)
    pdf.para(
        "The technical documentation of the EU AI Act (Article 11, Annex IV), generated from the evidence "
        "the service holds; each statement names the evidence it rests on."
    )
    pdf.grid(None, _meta_rows(techfile), (1.2, 4))
    for section in techfile["sections"]:
        _pdf_section(pdf, section)
    pdf.heading("Coverage: ISO/IEC 42001 Annex A and NIST AI RMF")
    pdf.grid(
        ["Framework", "Control", "Title", "Status", "Evidence, or what is needed"],
        [
            [
                c["framework"],
                c["control"],
                c["title"],
                "supported" if c["evidence"] else "gap",
                ", ".join(c["evidence"]) or c["needs"],
            ]
            for c in techfile.get("coverage", [])
        ],
        (1.1, 1, 2.6, 1, 3),
        size=7,
    )
    pdf.heading("Approvals")
    for approval in techfile.get("approvals", []):
        pdf.para(_approval_text(approval))
    if not techfile.get("approvals"):
        pdf.para("Not approved.")
    pdf.heading("Verification")
    pdf.para(
        f"The JSON bundle this document was drawn from is signed (Ed25519, key {document['key_id']}) and "
        "carries every cited document; check it offline with `mlgov verify-techfile techfile.json "
        "--public-key key.json`, which names any evidence that is missing or changed.",
        size=8.5,
    )
    pdf.para(f"Signature: {document['signature']}", size=7, mono=True)
    pdf.grid(
        ["Evidence", "SHA-256 of its canonical JSON"],
        list(techfile["evidence"].items()),
        (1.6, 4),
        size=7,
        mono_columns=(1,),
    )
    return pdf.to_bytes()


def techfile_export(document: dict[str, Any], fmt: str, name: str) -> HttpResponse:
    """The bundle as an answer: JSON, or the HTML page or the PDF (as a download named `name`)."""
    if fmt == "html":
        return HttpResponse(to_html(document), content_type="text/html; charset=utf-8")
    if fmt == "pdf":
        response = HttpResponse(to_pdf(document), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
        return response
    return JsonResponse(document)
