"""Lineage-and-audit reports of a model version, for reviewers and auditors: a JSON bundle signed
with the service key, a self-contained HTML page and a PDF, rendered by a worker (`report_render`,
through core/work.py).

The bundle (`contents.bundle`) holds everything a reviewer saw and an auditor checks: the model card
and the training data's datasheets, fairness by group, the explanation's importance, every gate
decision with its rules' thresholds and its own signature, the promotion requests with their reviews,
the provenance graph, the audit events with their hashes, and charts of them (`charts`, SVG). It is
signed as a whole, with a digest per section inside, so `mlgov verify-report` can name what was
edited. The HTML page (`page.to_html`) and the PDF (`pdf.to_pdf`) are drawn from the bundle alone.
"""

from __future__ import annotations

from django.db import transaction

from core.actors import SYSTEM, Actor
from core.artifacts import artifact_store_bytes
from core.audit import audit_append
from core.canonical_json import canonical_bytes
from core.models import Artifact, Workspace
from core.work import WorkState, work_dispatch, work_progress, work_start, work_succeed
from governance.models import ModelVersion, Report
from governance.reports.contents import bundle
from governance.reports.page import to_html
from governance.reports.pdf import to_pdf

__all__ = ["bundle", "report_render", "report_request", "to_html", "to_pdf"]


# --- the job --------------------------------------------------------------------------------------------


def report_request(*, workspace: Workspace, actor: Actor, version: ModelVersion) -> Report:
    """Create a queued report (one audit event) and hand it to a worker after commit."""
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
    the report through its task (core.work.WorkTask). `to_html` and `to_pdf` are looked up here, in
    the package, so a test can replace them."""
    if work_start(Report, report_id) is None:
        return
    report = Report.objects.select_related(
        "model_version__registered_model__workspace", "model_version__node", "model_version__artifact"
    ).get(pk=report_id)

    def store(data: bytes, name: str, media_type: str) -> Artifact:
        return artifact_store_bytes(
            workspace=report.workspace, actor=SYSTEM, data=data, filename=name, media_type=media_type
        )

    work_progress(Report, report_id, 0.1, "collecting the evidence, decisions, reviews and audit events")
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
