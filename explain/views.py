"""Dashboard page of the explain app: every explanation and fairness job of the workspace, with its
state, backend, timing and outcome, and a cancel button for those who may ask for jobs."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.actors import Actor
from core.errors import ApplicationError
from core.web import page_context, workspace_page
from explain import selectors, services
from explain.evidence import Explanation, FairnessAssessment
from explain.models import Job, JobKind, JobState


@workspace_page
def jobs(request, workspace):
    filters = {name: request.GET.get(name, "").strip() for name in ("kind", "state", "model")}
    found = selectors.job_list(
        workspace=workspace,
        kind=filters["kind"] if filters["kind"] in JobKind.values else "",
        state=filters["state"] if filters["state"] in JobState.values else "",
        model=filters["model"],
    )
    page = Paginator(found, 50).get_page(request.GET.get("page"))
    rows = [{"job": job, "outcome": outcome(job)} for job in page]
    return render(
        request,
        "explain/jobs.html",
        page_context(
            request,
            page=page,
            rows=rows,
            filters=filters,
            kinds=JobKind.values,
            states=JobState.values,
            can_cancel="explain:run" in request.scopes,
        ),
    )


def outcome(job: Job) -> str:
    """One line on what the job found (or why it failed)."""
    if job.state == JobState.FAILED:
        return job.error
    if job.state == JobState.CANCELLED:
        if job.chunks_total:
            return f"cancelled after {job.chunks_done} of {job.chunks_total} chunks"
        return "cancelled before it started"
    if job.state != JobState.SUCCEEDED or not job.result:
        return ""
    if job.kind == JobKind.EXPLANATION:
        return Explanation.from_job(job).summary()
    return FairnessAssessment.from_job(job).summary()


@require_POST
@workspace_page
def cancel(request, workspace, job_id):
    if "explain:run" not in request.scopes:
        messages.error(request, "your role cannot cancel jobs")
        return redirect("dashboard-jobs", slug=workspace.slug)
    try:
        job = services.job_cancel(workspace=workspace, actor=Actor(user=request.user), job_id=job_id)
    except ApplicationError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, f"Cancelled the {job.kind} job of {job.model_node.key}.")
    return redirect("dashboard-jobs", slug=workspace.slug)
