"""Dashboard pages for reviewers and auditors: the model inventory, the review queue, one request
with all its evidence, and the review form. Server-rendered; charts are plotly figures drawn by
static/js/charts.js from JSON blocks in the page. Reads go through `governance.selectors` and
`governance.request_evidence`, writes through `governance.services`. (`request` is left unannotated:
it carries the membership and scopes `core.web.workspace_page` sets, which HttpRequest does not
declare.)"""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.actors import Actor
from core.errors import ApplicationError, NotFound
from core.models import Workspace
from core.web import page_context, workspace_page
from governance import reports, request_evidence, selectors, services, techfile
from governance import request_display as display
from governance.models import DatasheetKind, RequestState, RiskTier
from governance.techfile_approvals import techfile_approve
from governance.techfile_render import techfile_export
from lineage.figures import network_figure


@workspace_page
def inventory(request, workspace: Workspace) -> HttpResponse:
    """Every model, its versions and stages, its risk classification, the latest gate result and
    open requests; filtered by name, stage and risk tier."""
    query = request.GET.get("q", "").strip()
    stage = request.GET.get("stage", "").strip()
    tier = request.GET.get("tier", "").strip()
    rows = selectors.model_inventory(workspace=workspace, query=query, stage=stage, risk_tier=tier)
    context = page_context(request, rows=rows, q=query, stage=stage, tier=tier, tiers=RiskTier.choices)
    return render(request, "governance/inventory.html", context)


@workspace_page
def queue(request, workspace: Workspace) -> HttpResponse:
    """The requests waiting for a review, and the latest closed ones."""
    found = selectors.review_queue(workspace=workspace)
    return render(
        request, "governance/queue.html", page_context(request, requests=found.open, closed=found.closed)
    )


@workspace_page
def request_page(request, workspace: Workspace, request_id: UUID) -> HttpResponse:
    """Everything a reviewer needs to decide, on one page."""
    try:
        evidence = request_evidence.promotion_request_evidence(workspace=workspace, request_id=request_id)
    except NotFound:
        raise Http404("no such request") from None
    promotion, version = evidence.promotion, evidence.version
    figures = {
        "provenance": network_figure(
            version.node_id, evidence.provenance, title="Provenance (upstream, 10 steps)"
        )
    }
    if evidence.explanation is not None:
        figures.update({f"shap_{name}": figure for name, figure in evidence.explanation.figures.items()})
    links = display.Links(
        slug=workspace.slug,
        model_key=version.node.key,
        nodes={**evidence.dataset_nodes, version.node.key: version.node_id},
    )
    user = request.user
    is_author = user.pk in (version.author_id, promotion.requested_by_id)
    can_review = (
        "approval:decide" in request.scopes
        and not is_author
        and promotion.state == RequestState.OPEN
        and not evidence.reviewed_by(user)
    )
    return render(
        request,
        "governance/request.html",
        page_context(
            request,
            promotion=promotion,
            version=version,
            gate=evidence.gate,
            rules=display.gate_rows(evidence.gate, evidence.rule_documents, links),
            card=evidence.card,
            card_view=evidence.card_view,
            card_sections=(
                display.datasheet_sections(
                    DatasheetKind.MODEL_CARD, evidence.card.content, evidence.card_view, links
                )
                if evidence.card and evidence.card_view
                else []
            ),
            datasheets=display.training_datasheets(evidence.datasheets, links),
            incumbent=evidence.incumbent,
            incumbent_basis=evidence.incumbent_basis,
            comparison=(
                display.comparison(evidence.current, evidence.incumbent, links) if evidence.incumbent else []
            ),
            fairness=[
                {
                    "assessment": assessment,
                    "figure_id": f"figure-fairness-{index}",
                    "headline_metric": assessment.headline_metric,
                    "groups": assessment.group_rows(assessment.headline_metric),
                    "dataset_href": links.node(assessment.dataset),
                    "job_href": links.job(assessment.job_id),
                }
                for index, assessment in enumerate(evidence.fairness, start=1)
            ],
            explanation=evidence.explanation,
            explanation_links=(
                {
                    "job": links.job(evidence.explanation.job_id),
                    "dataset": links.node(evidence.explanation.dataset),
                }
                if evidence.explanation
                else {}
            ),
            shap_summary=display.shap_summary(evidence.explanation) if evidence.explanation else [],
            running=evidence.running,
            figures=figures,
            provenance=evidence.provenance,
            provenance_edges=display.provenance_edges(evidence.provenance),
            lineage_href=links.node(version.node.key),
            budgets=evidence.budgets,
            is_author=is_author,
            can_review=can_review,
            reviews=evidence.reviews,
        ),
    )


@require_POST
@workspace_page
def review(request, workspace: Workspace, request_id: UUID) -> HttpResponse:
    decision = request.POST.get("decision")
    if decision not in ("approve", "reject"):
        messages.error(request, "choose approve or reject")
        return redirect("dashboard-request", slug=workspace.slug, request_id=request_id)
    if "approval:decide" not in request.scopes:
        messages.error(request, "your role cannot review promotion requests")
        return redirect("dashboard-request", slug=workspace.slug, request_id=request_id)
    try:
        reviewed, gate = services.review(
            workspace=workspace,
            actor=Actor(user=request.user),
            request_id=request_id,
            approve=decision == "approve",
            comment=request.POST.get("comment", ""),
        )
    except ApplicationError as error:
        messages.error(request, error.detail)
        return redirect("dashboard-request", slug=workspace.slug, request_id=request_id)
    if reviewed.state == RequestState.COMPLETED:
        messages.success(
            request, f"Approved: {reviewed.model_version} is now {reviewed.model_version.stage}."
        )
    elif reviewed.state == RequestState.REJECTED:
        messages.success(request, "Rejected.")
    else:
        failing = [r["rule"] for r in gate.statement["rules"] if r["passed"] is False] if gate else []
        messages.success(request, "Approval recorded; the gate still fails: " + ", ".join(failing))
    return redirect("dashboard-request", slug=workspace.slug, request_id=request_id)


@require_POST
@workspace_page
def report_export(request, workspace: Workspace, name: str, version: str) -> HttpResponse:
    if "report:export" not in request.scopes:
        messages.error(request, "your role cannot export reports")
        return redirect("dashboard-inventory", slug=workspace.slug)
    found = selectors.version_get(workspace=workspace, name=name, version=version)
    report = reports.report_request(workspace=workspace, actor=Actor(user=request.user), version=found)
    return redirect("dashboard-report", slug=workspace.slug, report_id=report.pk)


@workspace_page
def report_page(request, workspace: Workspace, report_id: UUID) -> HttpResponse:
    if "report:export" not in request.scopes:  # as the API's report endpoints
        return render(request, "core/forbidden.html", page_context(request), status=403)
    try:
        report = selectors.report_get(workspace=workspace, report_id=report_id)
    except NotFound:
        raise Http404("no such report") from None
    return render(request, "governance/report.html", page_context(request, report=report))


@workspace_page
def reports_page(request, workspace: Workspace, name: str = "", version: str = "") -> HttpResponse:
    """The workspace's reports, or one version's with a button to ask for another: each with its
    state, times and downloads. For the roles that export reports, as the report page."""
    if "report:export" not in request.scopes:
        return render(request, "core/forbidden.html", page_context(request), status=403)
    found = selectors.version_get(workspace=workspace, name=name, version=version) if name else None
    page = Paginator(selectors.report_list(workspace=workspace, version=found), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "governance/reports.html",
        page_context(
            request,
            page=page,
            version=found,
            filters={},
            unfinished=any(not report.finished for report in page),
        ),
    )


@workspace_page
def techfile_page(request, workspace: Workspace, name: str, version: str) -> HttpResponse:
    """The version's technical file: completeness section by section, what is missing, the coverage
    gaps, the approvals (and the form to approve, for those who may), and the exports (?export=)."""
    if not {"report:export", "approval:decide"} & request.scopes:  # who exports it, or approves it
        return render(request, "core/forbidden.html", page_context(request), status=403)
    found = selectors.version_get(workspace=workspace, name=name, version=version)
    if request.method == "POST":
        if "approval:decide" not in request.scopes:
            return render(request, "core/forbidden.html", page_context(request), status=403)
        try:
            techfile_approve(
                workspace=workspace,
                actor=Actor(user=request.user),
                version=found,
                comment=request.POST.get("comment", "").strip()[:4000],
            )
        except ApplicationError as error:
            messages.error(request, error.detail)
        else:
            messages.success(request, f"You approved the technical file of {found}.")
        return redirect("dashboard-techfile", slug=workspace.slug, name=name, version=version)
    document = techfile.bundle(found)
    fmt = request.GET.get("export", "")
    if fmt in ("json", "html", "pdf"):
        return techfile_export(document, fmt, f"technical-file-{name}-{version}")
    sections = [
        {
            **section,
            "authored_done": [w for w in section["authored"] if w["completeness"] >= 1],
            "authored_completeness": (
                sum(w["completeness"] for w in section["authored"]) / len(section["authored"])
                if section["authored"]
                else None
            ),
        }
        for section in document["techfile"]["sections"]
    ]
    coverage = document["techfile"]["coverage"]
    context = page_context(
        request,
        version=found,
        file=document["techfile"],
        sections=sections,
        gaps=[row for row in coverage if not row["evidence"]],
        covered=sum(1 for row in coverage if row["evidence"]),
        controls=len(coverage),
    )
    return render(request, "governance/techfile.html", context)
