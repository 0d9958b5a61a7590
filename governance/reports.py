"""Lineage-and-audit reports of a model version, for auditors: a JSON bundle signed with the
service key, a self-contained HTML page, and a PDF.

The bundle holds the version's provenance (W3C PROV-JSON), the audit events that concern it (each
with the fields its hash covers, its previous hash and its hash, so every event can be re-hashed
offline), and its gate decisions (each with its own signature). The bundle's `report` is signed as
a whole; `mlgov verify-report` checks that signature, every decision's signature and every event's
hash.
"""

from __future__ import annotations

import html
import io
from typing import Any

from django.db.models import Q
from django.utils import timezone

from core import signing
from core.audit import event_document
from core.models import AuditEvent
from governance.models import GateDecision, ModelVersion
from lineage import exports
from lineage.stores import get_graph_store


def bundle(version: ModelVersion) -> dict[str, Any]:
    workspace = version.registered_model.workspace
    key = f"{version.registered_model.name}@{version.version}"
    graph = get_graph_store(workspace).provenance(version.node_id)
    provenance = exports.prov_json(workspace=workspace, root=version.node, subgraph=graph)
    events = (
        AuditEvent.objects.filter(workspace=workspace)
        .filter(Q(target=f"model:{key}") | Q(target=f"model_card:{key}"))
        .order_by("seq")
    )
    decisions = GateDecision.objects.filter(model_version=version).order_by("created_at")
    report = {
        "kind": "mlgov.model-version-report",
        "workspace": workspace.slug,
        "model": version.registered_model.name,
        "version": version.version,
        "stage": version.stage,
        "artifact_sha256": version.artifact.sha256,
        "generated_at": timezone.now().isoformat(),
        "provenance": provenance,
        "audit_events": [
            {"document": event_document(e), "prev_hash": e.prev_hash, "hash": e.hash} for e in events
        ],
        "gate_decisions": [
            {"statement": d.statement, "signature": d.signature, "key_id": d.key_id} for d in decisions
        ],
        "key_id": signing.key_id(),
    }
    from core.canonical_json import normalise

    report = normalise(report)
    return {
        "report": report,
        "signature": signing.sign(report),
        "algorithm": "Ed25519",
        "key_id": report["key_id"],
    }


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    entities = report["provenance"].get("entity", {})
    activities = report["provenance"].get("activity", {})
    return {"entities": entities, "activities": activities}


def to_html(document: dict[str, Any]) -> str:
    """A self-contained page: inline styles, no scripts, nothing fetched; every value escaped."""
    report, esc = document["report"], html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Report: {esc(report['model'])}@{esc(report['version'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;line-height:1.45}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;"
        "text-align:left;font-size:.9rem}.pass{color:#116b2f}.fail{color:#a11}code{word-break:break-all}"
        "</style></head><body>",
        f"<h1>Model version {esc(report['model'])}@{esc(report['version'])}</h1>",
        f"<p>Workspace {esc(report['workspace'])}; stage {esc(report['stage'])}; artifact sha256 "
        f"<code>{esc(report['artifact_sha256'])}</code>; generated {esc(report['generated_at'])}; "
        f"signed with key {esc(report['key_id'])}.</p>",
        "<h2>Gate decisions</h2>",
    ]
    for decision in report["gate_decisions"]:
        statement = decision["statement"]
        verdict = "passed" if statement["passed"] else "failed"
        parts.append(
            f"<h3 class='{'pass' if statement['passed'] else 'fail'}'>{esc(statement['stage'])}: {verdict} "
            f"({esc(statement['evaluated_at'])})</h3><table><tr><th>Rule</th><th>Result</th><th>Reason</th></tr>"
        )
        for rule in statement["rules"]:
            parts.append(
                f"<tr><td>{esc(rule['policy'])}/{esc(rule['rule'])}</td>"
                f"<td>{'pass' if rule['passed'] else 'fail'}</td><td>{esc(rule['reason'])}</td></tr>"
            )
        parts.append("</table>")
    if not report["gate_decisions"]:
        parts.append("<p>No gate decision yet.</p>")
    summary = _summary(report)
    parts.append("<h2>Provenance</h2><table><tr><th>Identifier</th><th>Type</th><th>Label</th></tr>")
    for group, label in ((summary["entities"], "entity"), (summary["activities"], "activity")):
        for identifier, item in group.items():
            parts.append(
                f"<tr><td><code>{esc(identifier)}</code></td><td>{label}</td>"
                f"<td>{esc(str(item.get('prov:label', '')))}</td></tr>"
            )
    parts.append(
        "</table><h2>Audit events</h2><table><tr><th>#</th><th>Time</th><th>Actor</th>"
        "<th>Action</th><th>Hash</th></tr>"
    )
    for event in report["audit_events"]:
        doc = event["document"]
        parts.append(
            f"<tr><td>{doc['seq']}</td><td>{esc(doc['time'])}</td><td>{esc(doc['actor'])}</td>"
            f"<td>{esc(doc['action'])}</td><td><code>{esc(event['hash'])}</code></td></tr>"
        )
    parts.append("</table></body></html>")
    return "".join(parts)


def to_pdf(document: dict[str, Any]) -> bytes:
    """The same content as a PDF (fpdf2, core fonts)."""
    from fpdf import FPDF

    report = document["report"]

    def text(value: Any) -> str:  # the core fonts are Latin-1
        return str(value).encode("latin-1", "replace").decode("latin-1")

    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(width, 9, text(f"Model version {report['model']}@{report['version']}"))
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(
        width,
        5,
        text(
            f"Workspace {report['workspace']}; stage {report['stage']}; generated {report['generated_at']}; "
            f"artifact sha256 {report['artifact_sha256']}; key {report['key_id']}"
        ),
    )
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(width, 8, "Gate decisions")
    pdf.set_font("Helvetica", size=10)
    for decision in report["gate_decisions"]:
        statement = decision["statement"]
        verdict = "PASSED" if statement["passed"] else "FAILED"
        pdf.multi_cell(width, 6, text(f"{statement['stage']}: {verdict} ({statement['evaluated_at']})"))
        for rule in statement["rules"]:
            mark = {True: "pass", False: "FAIL", None: "n/a"}[rule["passed"]]
            pdf.multi_cell(width, 5, text(f"  [{mark}] {rule['policy']}/{rule['rule']}: {rule['reason']}"))
    if not report["gate_decisions"]:
        pdf.multi_cell(width, 5, "No gate decision yet.")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(width, 8, "Provenance")
    pdf.set_font("Helvetica", size=9)
    summary = _summary(report)
    for group, label in ((summary["entities"], "entity"), (summary["activities"], "activity")):
        for identifier, item in group.items():
            pdf.multi_cell(width, 5, text(f"{label}: {identifier} {item.get('prov:label', '')}"))
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(width, 8, "Audit events")
    pdf.set_font("Helvetica", size=8)
    for event in report["audit_events"]:
        doc = event["document"]
        pdf.multi_cell(
            width, 4, text(f"#{doc['seq']} {doc['time']} {doc['actor']} {doc['action']} {event['hash']}")
        )
    buffer = io.BytesIO()
    pdf.output(buffer)
    return buffer.getvalue()


# --- the job --------------------------------------------------------------------------------------------


def report_request(*, workspace, actor, version: ModelVersion):
    """Create a queued report (one audit event) and hand it to a worker after commit."""
    from django.db import transaction

    from core.audit import audit_append
    from core.work import work_dispatch
    from governance.models import Report

    with transaction.atomic():
        report = Report.objects.create(workspace=workspace, model_version=version, requested_by=actor.user)
        audit_append(
            workspace=workspace,
            actor=actor,
            action="report.request",
            target=f"model:{version}",
            payload={"report": str(report.pk)},
        )
        work_dispatch(report)
    return report


def report_render(report_id: str) -> None:
    """Worker side: render the three forms, store them as artifacts, mark the report done. Safe to
    repeat (artifacts are content-addressed; a finished report is left alone). Any exception fails
    the report through its task (core.work.WorkTask)."""
    from django.db import transaction

    from core.actors import SYSTEM
    from core.artifacts import artifact_store_bytes
    from core.audit import audit_append
    from core.canonical_json import canonical_bytes
    from core.work import WorkState, work_progress, work_start, work_succeed
    from governance.models import Report

    if work_start(Report, report_id) is None:
        return
    report = Report.objects.select_related(
        "model_version__registered_model__workspace", "model_version__node", "model_version__artifact"
    ).get(pk=report_id)

    def store(data: bytes, name: str, media_type: str):
        return artifact_store_bytes(
            workspace=report.workspace, actor=SYSTEM, data=data, filename=name, media_type=media_type
        )

    work_progress(Report, report_id, 0.1, "collecting provenance, audit events and decisions")
    document = bundle(report.model_version)
    name = f"{report.model_version.registered_model.name}-{report.model_version.version}-report"
    work_progress(Report, report_id, 0.4, "rendering HTML")
    html_page = to_html(document)
    work_progress(Report, report_id, 0.6, "rendering PDF")
    pdf = to_pdf(document)
    work_progress(Report, report_id, 0.8, "storing")
    stored = (
        store(canonical_bytes(document), f"{name}.json", "application/json"),
        store(html_page.encode(), f"{name}.html", "text/html; charset=utf-8"),
        store(pdf, f"{name}.pdf", "application/pdf"),
    )
    with transaction.atomic():
        locked = Report.objects.select_for_update().get(pk=report.pk)
        if locked.state != WorkState.RUNNING:
            return
        work_succeed(locked, bundle=stored[0], html=stored[1], pdf=stored[2], step="done")
        audit_append(
            workspace=report.workspace,
            actor=SYSTEM,
            action="report.render",
            target=f"model:{report.model_version}",
            payload={
                "report": str(report.pk),
                "bundle_sha256": stored[0].sha256,
                "pdf_sha256": stored[2].sha256,
            },
        )
