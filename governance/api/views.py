"""Registry, datasheets, policies, gate and promotion API: each view reads through
`governance.selectors` or writes through `governance.services`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import signing
from core.api.base import WorkspaceAPIView
from core.errors import ApplicationError
from governance import datasheets, reports, selectors, services, techfile
from governance.api import serializers as s
from governance.models import Datasheet, DatasheetKind
from governance.techfile_approvals import techfile_approve
from governance.techfile_render import techfile_export


class ModelListView(WorkspaceAPIView):
    required_scopes = {"GET": "model:read"}

    @extend_schema(responses=s.ModelOutput(many=True))
    def get(self, request: Request) -> Response:
        models = selectors.model_list(workspace=self.access.workspace)
        return self.paginated(request, models, s.ModelOutput)


class ModelDetailView(WorkspaceAPIView):
    # Tags and the risk tier decide which policies govern the model: a policy writer's change.
    required_scopes = {"GET": "model:read", "PATCH": "policy:write"}

    @extend_schema(responses=s.ModelOutput)
    def get(self, request: Request, name: str) -> Response:
        return Response(s.ModelOutput(selectors.model_get(workspace=self.access.workspace, name=name)).data)

    @extend_schema(request=s.ModelUpdateInput, responses=s.ModelOutput)
    def patch(self, request: Request, name: str) -> Response:
        data = self.validated(s.ModelUpdateInput, request.data)
        services.model_update(workspace=self.access.workspace, actor=self.access.actor, name=name, **data)
        return Response(s.ModelOutput(selectors.model_get(workspace=self.access.workspace, name=name)).data)


class ModelVersionsView(WorkspaceAPIView):
    required_scopes = {"GET": "model:read", "POST": "model:write"}

    @extend_schema(responses=s.VersionOutput(many=True))
    def get(self, request: Request, name: str) -> Response:
        versions = selectors.version_list(workspace=self.access.workspace, name=name)
        return self.paginated(request, versions, s.VersionOutput)

    @extend_schema(request=s.RegisterInput, responses={201: s.VersionOutput})
    def post(self, request: Request, name: str) -> Response:
        data = self.validated(s.RegisterInput, request.data)
        data["artifact"] = str(data["artifact"])
        version = services.version_register(
            workspace=self.access.workspace, actor=self.access.actor, name=name, **data
        )
        return Response(s.VersionOutput(version).data, status=status.HTTP_201_CREATED)


class ModelVersionView(WorkspaceAPIView):
    required_scopes = {"GET": "model:read"}

    @extend_schema(responses=s.VersionOutput)
    def get(self, request: Request, name: str, version: str) -> Response:
        found = selectors.version_get(workspace=self.access.workspace, name=name, version=version)
        return Response(s.VersionOutput(found).data)


class AliasView(WorkspaceAPIView):
    required_scopes = {"PUT": "model:write"}

    @extend_schema(request=s.AliasInput, responses=s.VersionOutput)
    def put(self, request: Request, name: str, alias: str) -> Response:
        data = self.validated(s.AliasInput, request.data)
        record = services.alias_set(
            workspace=self.access.workspace,
            actor=self.access.actor,
            name=name,
            alias=alias,
            version=data["version"],
        )
        return Response(s.VersionOutput(record.version).data)


class DatasheetView(WorkspaceAPIView):
    """The latest revision (GET, ?export=markdown|html to export) or a new one (PUT)."""

    required_scopes = {"GET": "model:read", "PUT": "datasheet:write"}
    kind = ""

    def _body(self, sheet: Datasheet) -> dict[str, Any]:
        view = selectors.datasheet_view(sheet=sheet)
        return {
            "kind": sheet.kind,
            "subject": sheet.subject.key,
            "revision": sheet.revision,
            "created_at": sheet.created_at,
            "written": sheet.content,
            **view,
        }

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, version: str) -> HttpResponse:
        sheet = selectors.datasheet_latest(
            workspace=self.access.workspace, kind=self.kind, name=name, version=version
        )
        fmt = request.query_params.get("export", "json")
        if fmt in ("markdown", "html"):
            view = selectors.datasheet_view(sheet=sheet)
            render = datasheets.to_markdown if fmt == "markdown" else datasheets.to_html
            text = render(sheet.kind, sheet.subject.key, view["content"], view["completeness"])
            content_type = "text/markdown; charset=utf-8" if fmt == "markdown" else "text/html; charset=utf-8"
            return HttpResponse(text, content_type=content_type)
        if fmt != "json":
            raise ApplicationError("export must be json, markdown or html", field="export")
        return Response(self._body(sheet))

    @extend_schema(request=s.DatasheetInput, responses=OpenApiTypes.OBJECT)
    def put(self, request: Request, name: str, version: str) -> Response:
        data = self.validated(s.DatasheetInput, request.data)
        content = data["content"] if "content" in data else datasheets.parse(data["document"], data["format"])
        sheet = services.datasheet_push(
            workspace=self.access.workspace,
            actor=self.access.actor,
            kind=self.kind,
            name=name,
            version=version,
            content=content,
        )
        return Response(self._body(sheet))


class ModelCardView(DatasheetView):
    kind = DatasheetKind.MODEL_CARD


class DatasetDatasheetView(DatasheetView):
    kind = DatasheetKind.DATASET


class AnnexIVView(DatasheetView):
    """The authored sections of the version's EU AI Act technical documentation."""

    kind = DatasheetKind.ANNEX_IV


class PolicyListView(WorkspaceAPIView):
    required_scopes = {"GET": "model:read", "POST": "policy:write"}

    @extend_schema(responses=s.PolicyOutput(many=True))
    def get(self, request: Request) -> Response:
        return self.paginated(request, selectors.policy_list(workspace=self.access.workspace), s.PolicyOutput)

    @extend_schema(request=s.PolicyInput, responses={201: s.PolicyOutput})
    def post(self, request: Request) -> Response:
        data = self.validated(s.PolicyInput, request.data)
        document = (
            data["document"] if "document" in data else datasheets.parse(data["text"], "yaml", field="text")
        )
        policy = services.policy_upload(
            workspace=self.access.workspace, actor=self.access.actor, document=document
        )
        return Response(s.PolicyOutput(policy).data, status=status.HTTP_201_CREATED)


class GateView(WorkspaceAPIView):
    required_scopes = {"POST": "gate:check"}

    @extend_schema(request=s.GateInput, responses=s.DecisionOutput)
    def post(self, request: Request, name: str, version: str) -> Response:
        data = self.validated(s.GateInput, request.data)
        found = selectors.version_get(
            workspace=self.access.workspace,
            name=name,
            version=version,
            related=("registered_model", "artifact"),
        )
        decision = services.gate_check(
            workspace=self.access.workspace, actor=self.access.actor, version=found, stage=data["stage"]
        )
        return Response(s.DecisionOutput(decision).data)


class DecisionView(WorkspaceAPIView):
    required_scopes = {"GET": "model:read"}

    @extend_schema(responses=s.DecisionOutput)
    def get(self, request: Request, decision_id: UUID) -> Response:
        decision = selectors.decision_get(workspace=self.access.workspace, decision_id=decision_id)
        return Response(s.DecisionOutput(decision).data)


class PublicKeyView(APIView):
    """The key that signs gate decisions (public: anyone may verify)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        return Response(signing.public_key_document())


class PromotionRequestsView(WorkspaceAPIView):
    required_scopes = {"POST": "promotion:request", "GET": "model:read"}

    @extend_schema(request=s.PromotionInput, responses={201: s.RequestOutput})
    def post(self, request: Request, name: str, version: str) -> Response:
        data = self.validated(s.PromotionInput, request.data)
        found = selectors.version_get(workspace=self.access.workspace, name=name, version=version)
        created = services.promotion_request(
            workspace=self.access.workspace, actor=self.access.actor, version=found, **data
        )
        return Response(s.RequestOutput(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.RequestOutput(many=True))
    def get(self, request: Request, name: str, version: str) -> Response:
        requests = selectors.version_promotion_requests(
            workspace=self.access.workspace, name=name, version=version
        )
        return self.paginated(request, requests, s.RequestOutput)


class ReviewQueueView(WorkspaceAPIView):
    required_scopes = {"GET": "model:read"}

    @extend_schema(parameters=[s.RequestFilterInput], responses=s.RequestOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = self.validated(s.RequestFilterInput, request.query_params)
        queue = selectors.promotion_request_list(workspace=self.access.workspace, **filters)
        return self.paginated(request, queue, s.RequestOutput)


class ReviewView(WorkspaceAPIView):
    required_scopes = {"POST": "approval:decide"}
    approve = True

    @extend_schema(request=s.ReviewInput, responses=s.RequestOutput)
    def post(self, request: Request, request_id: UUID) -> Response:
        data = self.validated(s.ReviewInput, request.data)
        reviewed, decision = services.review(
            workspace=self.access.workspace,
            actor=self.access.actor,
            request_id=request_id,
            approve=self.approve,
            comment=data["comment"],
        )
        body = dict(s.RequestOutput(reviewed).data)
        body["gate"] = s.DecisionOutput(decision).data if decision else None
        return Response(body)


class ApproveView(ReviewView):
    approve = True


class RejectView(ReviewView):
    approve = False


class ReportsView(WorkspaceAPIView):
    """Ask for a lineage-and-audit report of a version (rendered by a worker): 202 + its URL."""

    required_scopes = {"GET": "report:export", "POST": "report:export"}

    @extend_schema(responses=s.ReportOutput(many=True), description="The version's reports, newest first.")
    def get(self, request: Request, name: str, version: str) -> Response:
        listed = selectors.version_reports(workspace=self.access.workspace, name=name, version=version)
        return self.paginated(request, listed, s.ReportOutput)

    @extend_schema(request=None, responses={202: s.ReportOutput})
    def post(self, request: Request, name: str, version: str) -> Response:
        found = selectors.version_get(workspace=self.access.workspace, name=name, version=version)
        report = reports.report_request(
            workspace=self.access.workspace, actor=self.access.actor, version=found
        )
        body = s.ReportOutput(report).data
        url = reverse("report-detail", kwargs={"report_id": report.pk})
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class TechnicalFileView(WorkspaceAPIView):
    """The version's EU AI Act technical file, generated now and signed (governance/techfile.py):
    the JSON bundle, or ?export=html|pdf for people (governance/techfile_render.py)."""

    required_scopes = {"GET": "report:export"}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, name: str, version: str) -> HttpResponse:
        found = selectors.version_get(workspace=self.access.workspace, name=name, version=version)
        fmt = request.query_params.get("export", "json")
        if fmt not in ("json", "html", "pdf"):
            raise ApplicationError("export must be json, html or pdf", field="export")
        return techfile_export(
            techfile.bundle(found), fmt, f"technical-file-{found.registered_model.name}-{found.version}"
        )


class TechnicalFileApprovalView(WorkspaceAPIView):
    """Approve the technical file as it is now (separation of duties: governance/techfile_approvals.py)."""

    required_scopes = {"POST": "approval:decide"}

    @extend_schema(request=s.TechfileApprovalInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, name: str, version: str) -> Response:
        data = self.validated(s.TechfileApprovalInput, request.data)
        found = selectors.version_get(workspace=self.access.workspace, name=name, version=version)
        approval = techfile_approve(
            workspace=self.access.workspace, actor=self.access.actor, version=found, comment=data["comment"]
        )
        return Response(
            {**approval.statement, "signature": approval.signature}, status=status.HTTP_201_CREATED
        )


class ReportDetailView(WorkspaceAPIView):
    required_scopes = {"GET": "report:export"}

    @extend_schema(responses=s.ReportOutput)
    def get(self, request: Request, report_id: UUID) -> Response:
        report = selectors.report_get(workspace=self.access.workspace, report_id=report_id)
        return Response(s.ReportOutput(report).data)
