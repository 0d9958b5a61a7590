"""Jobs API: ask for an explanation or a fairness assessment of a model version (202 + job URL),
then follow the job."""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response

from core.api.base import WorkspaceAPIView
from core.errors import ApplicationError
from explain import selectors, services
from explain.api import serializers as s
from explain.models import JobKind

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="a key of the client's choosing (at most 200 printable characters): the same request "
    "again with the same key answers 200 with the job made the first time instead of asking for "
    "another; the key reused for a different request is a 409",
)


def idempotency_key(request) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 200 or not key.isprintable():
        raise ApplicationError(
            "Idempotency-Key must be at most 200 printable characters", field="Idempotency-Key"
        )
    return key


class JobRequestView(WorkspaceAPIView):
    required_scopes = {"POST": "explain:run", "GET": "model:read"}
    kind = ""
    input_class: type = s.JobInput

    def post(self, request, name: str, version: str):
        params = self.validated(self.input_class, request.data)
        dataset_key = params.pop("dataset_version")
        workspace = self.access.workspace
        job, created = services.job_create(
            workspace=workspace,
            actor=self.access.actor,
            kind=self.kind,
            model_node=selectors.model_version_node(workspace, name, version),
            dataset_key=dataset_key,
            params=params,
            idempotency_key=idempotency_key(request),
        )
        body = s.JobOutput(job).data
        answer = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK  # 200: asked before
        return Response(body, status=answer, headers={"Location": body["url"]})

    @extend_schema(responses=s.JobOutput(many=True))
    def get(self, request, name: str, version: str):
        node = selectors.model_version_node(self.access.workspace, name, version)
        jobs = selectors.job_list(workspace=self.access.workspace, kind=self.kind, model_node=node)
        return self.paginated(request, jobs, s.JobOutput)


def job_request_schema(input_class: type) -> Callable:
    """The POST of a JobRequestView (its GET, the list, is declared on the base class)."""
    return extend_schema_view(
        post=extend_schema(
            request=input_class,
            responses={202: s.JobOutput, 200: s.JobOutput},
            parameters=[IDEMPOTENCY_KEY],
        )
    )


@job_request_schema(s.ExplanationInput)
class ExplanationsView(JobRequestView):
    """SHAP explanations of a model version on a dataset version (runs on a worker)."""

    kind = JobKind.EXPLANATION
    input_class = s.ExplanationInput


@job_request_schema(s.FairnessInput)
class FairnessAssessmentsView(JobRequestView):
    """Fairness assessment (fairlearn metrics by group, disparities, bootstrap intervals)."""

    kind = JobKind.FAIRNESS
    input_class = s.FairnessInput


class JobListView(WorkspaceAPIView):
    required_scopes = {"GET": "model:read"}

    @extend_schema(parameters=[s.JobFilterInput], responses=s.JobOutput(many=True))
    def get(self, request):
        filters = self.validated(s.JobFilterInput, request.query_params)
        jobs = selectors.job_list(workspace=self.access.workspace, **filters)
        return self.paginated(request, jobs, s.JobOutput)


class JobDetailView(WorkspaceAPIView):
    required_scopes = {"GET": "model:read"}

    @extend_schema(responses=s.JobOutput)
    def get(self, request, job_id):
        return Response(s.JobOutput(selectors.job_get(workspace=self.access.workspace, job_id=job_id)).data)


class JobCancelView(WorkspaceAPIView):
    required_scopes = {"POST": "explain:run"}

    @extend_schema(request=None, responses=s.JobOutput)
    def post(self, request, job_id):
        """Cancel a queued or running job (409 if it has already succeeded or failed)."""
        job = services.job_cancel(workspace=self.access.workspace, actor=self.access.actor, job_id=job_id)
        return Response(s.JobOutput(job).data)
