"""Dashboard pages for reviewers and auditors: the model inventory, the review queue, one request
with all its evidence, and the review form. Server-rendered; charts are plotly figures drawn by
static/js/charts.js from JSON blocks in the page."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.actors import Actor
from core.errors import ApplicationError
from core.web import page_context, workspace_page
from explain.models import Job, JobState
from explain.selectors import latest_explanation, latest_fairness_assessments
from governance import checks, reports, services
from governance.models import (
    Datasheet,
    DatasheetKind,
    GateDecision,
    ModelVersion,
    PromotionRequest,
    Report,
    RequestState,
)
from lineage.figures import network_figure
from lineage.stores import get_graph_store
from privacy.models import PrivacyBudget


@workspace_page
def inventory(request, workspace):
    """Every model, its versions and stages, the latest gate result and open requests."""
    query = request.GET.get("q", "").strip()
    stage = request.GET.get("stage", "").strip()
    # Three queries however many versions: the versions (each with the id of its latest gate decision,
    # in the models' order), those decisions, and the open requests.
    latest = GateDecision.objects.filter(model_version=OuterRef("pk")).order_by("-created_at")
    versions = ModelVersion.objects.filter(registered_model__workspace=workspace).select_related(
        "registered_model"
    )
    if query:
        versions = versions.filter(registered_model__name__icontains=query)
    if stage:
        versions = versions.filter(stage=stage)
    found = list(versions.annotate(latest_decision_id=Subquery(latest.values("pk")[:1])))
    decisions = GateDecision.objects.in_bulk([v.latest_decision_id for v in found if v.latest_decision_id])
    open_requests: dict[int, list[PromotionRequest]] = defaultdict(list)
    for open_request in PromotionRequest.objects.filter(model_version__in=found, state=RequestState.OPEN):
        open_requests[open_request.model_version_id].append(open_request)
    rows = []
    for version in found:
        decision = decisions.get(version.latest_decision_id)
        failing = [r for r in decision.statement["rules"] if not r["passed"]] if decision else []
        rows.append(
            {
                "model": version.registered_model,
                "version": version,
                "decision": decision,
                "failing": failing,
                "open_requests": open_requests[version.pk],
            }
        )
    return render(
        request, "governance/inventory.html", page_context(request, rows=rows, q=query, stage=stage)
    )


@workspace_page
def queue(request, workspace):
    requests = PromotionRequest.objects.filter(workspace=workspace, state=RequestState.OPEN).select_related(
        "model_version__registered_model", "requested_by"
    )
    closed = (
        PromotionRequest.objects.filter(workspace=workspace)
        .exclude(state=RequestState.OPEN)
        .select_related("model_version__registered_model")[:20]
    )
    return render(request, "governance/queue.html", page_context(request, requests=requests, closed=closed))


@workspace_page
def request_page(request, workspace, request_id):
    """Everything a reviewer needs to decide, on one page."""
    promotion = (
        PromotionRequest.objects.filter(workspace=workspace, pk=request_id)
        .select_related(
            "model_version__registered_model__workspace",
            "model_version__node",
            "model_version__artifact",
            "requested_by",
        )
        .first()
    )
    if promotion is None:
        raise Http404("no such request")
    version = promotion.model_version
    gate = services.evaluate(version, promotion.stage, promotion)
    card = Datasheet.objects.filter(subject=version.node, kind=DatasheetKind.MODEL_CARD).first()
    card_view = services.datasheet_view(card) if card else None
    fairness = latest_fairness_assessments(model_node=version.node)
    explanation = latest_explanation(model_node=version.node)
    running = Job.objects.filter(model_node=version.node, state__in=[JobState.QUEUED, JobState.RUNNING])
    provenance = get_graph_store(workspace).upstream(version.node_id, depth=10)
    figures = {
        "provenance": network_figure(version.node_id, provenance, title="Provenance (upstream, 10 steps)")
    }
    if explanation is not None:
        figures.update({f"shap_{name}": figure for name, figure in explanation.figures.items()})
    ctx = checks.Context(version, promotion.stage, promotion)
    budgets = PrivacyBudget.objects.filter(dataset_node__in=ctx.training_datasets).select_related(
        "dataset_node"
    )
    user = request.user
    is_author = user.pk in (version.author_id, promotion.requested_by_id)
    can_review = (
        "approval:decide" in request.scopes
        and not is_author
        and promotion.state == RequestState.OPEN
        and not promotion.reviews.filter(reviewer=user).exists()
    )
    return render(
        request,
        "governance/request.html",
        page_context(
            request,
            promotion=promotion,
            version=version,
            gate=gate,
            card=card,
            card_view=card_view,
            fairness=[
                {"assessment": assessment, "figure_id": f"figure-fairness-{index}"}
                for index, assessment in enumerate(fairness, start=1)
            ],
            explanation=explanation,
            running=running,
            figures=figures,
            budgets=budgets,
            is_author=is_author,
            can_review=can_review,
            reviews=promotion.reviews.select_related("reviewer"),
        ),
    )


@require_POST
@workspace_page
def review(request, workspace, request_id):
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
        reviewed.model_version.refresh_from_db(fields=["stage"])
        messages.success(
            request, f"Approved: {reviewed.model_version} is now {reviewed.model_version.stage}."
        )
    elif reviewed.state == RequestState.REJECTED:
        messages.success(request, "Rejected.")
    else:
        failing = [r["rule"] for r in gate.statement["rules"] if not r["passed"]] if gate else []
        messages.success(request, "Approval recorded; the gate still fails: " + ", ".join(failing))
    return redirect("dashboard-request", slug=workspace.slug, request_id=request_id)


@require_POST
@workspace_page
def report_export(request, workspace, name: str, version: str):
    if "report:export" not in request.scopes:
        messages.error(request, "your role cannot export reports")
        return redirect("dashboard-inventory", slug=workspace.slug)
    found = services.version_get(workspace, name, version)
    report = reports.report_request(workspace=workspace, actor=Actor(user=request.user), version=found)
    return redirect("dashboard-report", slug=workspace.slug, report_id=report.pk)


@workspace_page
def report_page(request, workspace, report_id):
    if "report:export" not in request.scopes:  # as the API's report endpoints
        return render(request, "core/forbidden.html", page_context(request), status=403)
    report = (
        Report.objects.filter(workspace=workspace, pk=report_id)
        .select_related("model_version__registered_model")
        .first()
    )
    if report is None:
        raise Http404("no such report")
    return render(request, "governance/report.html", page_context(request, report=report))
