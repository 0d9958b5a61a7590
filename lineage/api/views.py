"""Lineage API: ingestion (native and OpenLineage), node lookup, graph queries and exports."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response

from core.api.base import WorkspaceAPIView, declared_length
from core.errors import PayloadTooLarge
from lineage import exports, selectors
from lineage.api import serializers as s
from lineage.models import Node
from lineage.native import check_event_size, native_batch
from lineage.openlineage import openlineage_batch
from lineage.services import lineage_ingest
from lineage.specs import Checker
from lineage.stores import get_graph_store


class RecordView(WorkspaceAPIView):
    """Ingestion: size checks, then `parse` the body into a batch, recorded in one transaction."""

    required_scopes = {"POST": "lineage:write"}
    source = ""
    accepts_nul = True  # keys, names and properties keep NUL (lineage/fields.py)
    body_limit_setting = ""
    created_status = status.HTTP_200_OK

    def parse(self, data):
        raise NotImplementedError

    def post(self, request):
        limit = getattr(settings, self.body_limit_setting)
        length = declared_length(request)
        if length > limit:
            raise PayloadTooLarge(
                f"the request body is {length} bytes; the limit is {limit} bytes ({self.body_limit_setting})"
            )
        counts = lineage_ingest(
            workspace=self.access.workspace,
            actor=self.access.actor,
            batch=self.parse(request.data),
            source=self.source,
            body=request.data,
        )
        return Response(counts, status=self.created_status)


@extend_schema_view(post=extend_schema(request=OpenApiTypes.OBJECT, responses=s.RecordOutput))
class LineageEventsView(RecordView):
    """Record a batch of native lineage events in one transaction (all or nothing)."""

    source = "native"
    body_limit_setting = "DATA_UPLOAD_MAX_MEMORY_SIZE"

    def parse(self, data):
        return native_batch(data)


@extend_schema_view(post=extend_schema(request=OpenApiTypes.OBJECT, responses={201: s.RecordOutput}))
class OpenLineageView(RecordView):
    """Marquez-compatible endpoint for OpenLineage clients."""

    source = "openlineage"
    body_limit_setting = "LINEAGE_MAX_EVENT_BYTES"
    created_status = status.HTTP_201_CREATED

    def parse(self, data):
        checker = Checker()
        if not check_event_size(checker, data, "event"):
            raise PayloadTooLarge(checker.errors[0].message, field="event")
        return openlineage_batch(data)


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
        return selectors.node_get(workspace=self.access.workspace, node_id=node_id)


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
        a = selectors.node_get(workspace=self.access.workspace, node_id=args["source"])
        b = selectors.node_get(workspace=self.access.workspace, node_id=args["target"])
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
