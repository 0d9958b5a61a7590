"""Lineage API: ingestion (native and OpenLineage), node lookup, graph queries and exports."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from core.api.base import WorkspaceAPIView
from core.errors import PayloadTooLarge
from lineage import exports, selectors
from lineage.api import serializers as s
from lineage.models import Node
from lineage.native import check_event_size, native_batch
from lineage.openlineage import openlineage_batch
from lineage.services import lineage_record
from lineage.specs import Checker
from lineage.stores import get_graph_store


def _refuse_large_body(request, limit: int, setting: str) -> None:
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the request body is {length} bytes; the limit is {limit} bytes ({setting})")


class LineageEventsView(WorkspaceAPIView):
    required_scopes = {"POST": "lineage:write"}

    @extend_schema(request=OpenApiTypes.OBJECT, responses=s.RecordOutput)
    def post(self, request):
        """Record a batch of native lineage events in one transaction (all or nothing)."""
        _refuse_large_body(request, settings.DATA_UPLOAD_MAX_MEMORY_SIZE, "DATA_UPLOAD_MAX_MEMORY_SIZE")
        batch = native_batch(request.data)
        counts = lineage_record(
            workspace=self.access.workspace,
            actor=self.access.actor,
            batch=batch,
            source="native",
            body=request.data,
        )
        return Response(counts, status=status.HTTP_200_OK)


class OpenLineageView(WorkspaceAPIView):
    """Marquez-compatible endpoint for OpenLineage clients."""

    required_scopes = {"POST": "lineage:write"}

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: s.RecordOutput})
    def post(self, request):
        _refuse_large_body(request, settings.LINEAGE_MAX_EVENT_BYTES, "LINEAGE_MAX_EVENT_BYTES")
        checker = Checker()
        if not check_event_size(checker, request.data, "event"):
            raise PayloadTooLarge(checker.errors[0].message, field="event")
        batch = openlineage_batch(request.data)
        counts = lineage_record(
            workspace=self.access.workspace,
            actor=self.access.actor,
            batch=batch,
            source="openlineage",
            body=request.data,
        )
        return Response(counts, status=status.HTTP_201_CREATED)


class NodeListView(WorkspaceAPIView):
    required_scopes = {"GET": "lineage:read"}

    @extend_schema(parameters=[s.NodeFilterInput], responses=s.NodeOutput(many=True))
    def get(self, request):
        filters = self.validated(s.NodeFilterInput, request.query_params)
        nodes = selectors.node_list(workspace=self.access.workspace, **filters)
        return self.paginated(request, nodes, s.NodeOutput)


class NodeView(WorkspaceAPIView):
    required_scopes = {"GET": "lineage:read"}

    def node(self, node_id: int) -> Node:
        return get_object_or_404(Node, workspace=self.access.workspace, pk=node_id)


class NodeDetailView(NodeView):
    @extend_schema(responses=s.NodeOutput)
    def get(self, request, node_id: int):
        return Response(s.NodeOutput(self.node(node_id)).data)


def _subgraph_response(store, subgraph) -> Response:
    return Response({**subgraph.as_dict(), "store": store.name})


class WalkView(NodeView):
    direction = "up"

    @extend_schema(parameters=[s.WalkInput], responses=s.SubgraphOutput)
    def get(self, request, node_id: int):
        node = self.node(node_id)
        args = self.validated(s.WalkInput, request.query_params)
        store = get_graph_store(self.access.workspace)
        walk = store.upstream if self.direction == "up" else store.downstream
        return _subgraph_response(store, walk(node.pk, args["depth"], args.get("kinds")))


class UpstreamView(WalkView):
    """What the node was built from, `depth` steps back."""

    direction = "up"


class DownstreamView(WalkView):
    """What was built from the node, `depth` steps forward."""

    direction = "down"


class ImpactView(NodeView):
    @extend_schema(parameters=[s.ImpactInput], responses=s.SubgraphOutput)
    def get(self, request, node_id: int):
        """The model versions and deployments that depend on this node."""
        node = self.node(node_id)
        args = self.validated(s.ImpactInput, request.query_params)
        store = get_graph_store(self.access.workspace)
        return _subgraph_response(store, store.impact(node.pk, args.get("depth")))


class ProvenanceView(NodeView):
    @extend_schema(responses=s.SubgraphOutput)
    def get(self, request, node_id: int):
        """Everything the node was built from (its full upstream subgraph)."""
        node = self.node(node_id)
        store = get_graph_store(self.access.workspace)
        return _subgraph_response(store, store.provenance(node.pk))


class PathView(WorkspaceAPIView):
    required_scopes = {"GET": "lineage:read"}

    @extend_schema(parameters=[s.PathInput], responses=s.SubgraphOutput)
    def get(self, request):
        """A shortest path between two nodes, whatever the edges' direction (404 when none)."""
        args = self.validated(s.PathInput, request.query_params)
        a = get_object_or_404(Node, workspace=self.access.workspace, pk=args["source"])
        b = get_object_or_404(Node, workspace=self.access.workspace, pk=args["target"])
        store = get_graph_store(self.access.workspace)
        subgraph = store.path(a.pk, b.pk, args["max_depth"])
        if subgraph is None:
            return Response(
                {
                    "type": "about:blank",
                    "title": "Not found",
                    "status": 404,
                    "detail": f"no path within {args['max_depth']} steps",
                },
                status=404,
                content_type="application/problem+json",
            )
        return _subgraph_response(store, subgraph)


class ExportView(NodeView):
    formats = {
        "prov": exports.prov_json,
        "openlineage": exports.openlineage_events,
        "graph": exports.graph_json,
    }

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, node_id: int, fmt: str):
        """The node's provenance as W3C PROV-JSON, as OpenLineage events, or as a plain JSON graph."""
        node = self.node(node_id)
        subgraph = get_graph_store(self.access.workspace).provenance(node.pk)
        build = self.formats.get(fmt)
        if build is None:
            raise Http404(f"unknown export format {fmt!r}; expected one of {', '.join(self.formats)}")
        return Response(build(workspace=self.access.workspace, root=node, subgraph=subgraph))
