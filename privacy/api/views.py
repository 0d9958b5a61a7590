"""Differential privacy API: budgets, releases, and the DP summary of a dataset version.
Raw rows never leave through it: every answer is a noisy statistic."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from core.api.base import WorkspaceAPIView
from core.errors import NotFound
from privacy import selectors, services
from privacy.api import serializers as s


class DatasetView(WorkspaceAPIView):
    def node(self, name: str, version: str):
        return selectors.dataset_version_node(self.access.workspace, name, version)


class BudgetView(DatasetView):
    required_scopes = {"GET": "lineage:read", "PUT": "privacy:budget"}

    @extend_schema(responses=s.BudgetOutput)
    def get(self, request, name: str, version: str):
        budget = selectors.privacy_budget_get(node=self.node(name, version))
        return Response(s.BudgetOutput(budget).data)

    @extend_schema(request=s.BudgetInput, responses=s.BudgetOutput)
    def put(self, request, name: str, version: str):
        data = self.validated(s.BudgetInput, request.data)
        budget = services.budget_set(
            workspace=self.access.workspace, actor=self.access.actor, node=self.node(name, version), **data
        )
        return Response(s.BudgetOutput(budget).data)


class ReleasesView(DatasetView):
    required_scopes = {"GET": "lineage:read", "POST": "privacy:release"}

    @extend_schema(responses=s.ReleaseOutput(many=True))
    def get(self, request, name: str, version: str):
        releases = selectors.release_list(node=self.node(name, version))
        return self.paginated(request, releases, s.ReleaseOutput)

    @extend_schema(request=s.ReleaseInput, responses={201: s.ReleaseOutput, 200: s.ReleaseOutput})
    def post(self, request, name: str, version: str):
        data = self.validated(s.ReleaseInput, request.data)
        release, outcome = services.release_request(
            workspace=self.access.workspace,
            actor=self.access.actor,
            node=self.node(name, version),
            request=data,
        )
        body = {**s.ReleaseOutput(release).data, "outcome": outcome}
        code = {"released": status.HTTP_201_CREATED, "queued": status.HTTP_202_ACCEPTED}.get(outcome, 200)
        return Response(body, status=code)


class SummaryView(DatasetView):
    required_scopes = {"GET": "lineage:read", "POST": "privacy:release"}
    pagination_class = None  # POST answers the releases it made, all of them: a list, not a page

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, name: str, version: str):
        summary = selectors.latest_summary(self.node(name, version))
        if summary is None:
            raise NotFound(f"no DP summary of {name}@{version} yet")
        return Response(summary)

    @extend_schema(request=s.SummaryInput, responses={201: s.ReleaseOutput(many=True)})
    def post(self, request, name: str, version: str):
        data = self.validated(s.SummaryInput, request.data)
        releases = services.summary_request(
            workspace=self.access.workspace, actor=self.access.actor, node=self.node(name, version), **data
        )
        return Response(s.ReleaseOutput(releases, many=True).data, status=status.HTTP_201_CREATED)
