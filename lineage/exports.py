"""Exports of a node's provenance: W3C PROV-JSON, OpenLineage events, and a plain JSON graph."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.utils import timezone

from core.canonical_json import canonical_json
from core.models import Workspace
from lineage.kinds import EdgeKind, NodeKind
from lineage.models import Node
from lineage.stores.base import GraphEdge, GraphNode, Subgraph

PRODUCER = "https://github.com/mlgov/mlgov"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def graph_json(*, workspace: Workspace, root: Node, subgraph: Subgraph) -> dict[str, Any]:
    return {
        **subgraph.as_dict(),
        "workspace": workspace.slug,
        "root": {"id": root.pk, "kind": root.kind, "key": root.key},
        "exported_at": timezone.now().isoformat(),
    }


# --- W3C PROV-JSON --------------------------------------------------------------------------------
ACTIVITY_KINDS = {NodeKind.RUN}
PLAN_KINDS = {NodeKind.JOB}


def _prov_id(node_id: int) -> str:
    return f"mlgov:node-{node_id}"


def prov_json(*, workspace: Workspace, root: Node, subgraph: Subgraph) -> dict[str, Any]:
    """PROV-JSON (https://www.w3.org/submissions/prov-json/): runs are activities, jobs are plans,
    everything else is an entity; the service that recorded the lineage is the agent."""
    doc: dict[str, Any] = {
        "prefix": {"mlgov": f"urn:mlgov:{workspace.slug}:", "prov": "http://www.w3.org/ns/prov#"},
        "entity": {},
        "activity": {},
        "agent": {"mlgov:service": {"prov:type": "prov:SoftwareAgent", "prov:label": "mlgov"}},
    }
    nodes = {n.id: n for n in subgraph.nodes}
    for node in subgraph.nodes:
        attrs = _prov_attributes(node)
        if node.kind in ACTIVITY_KINDS:
            doc["activity"][_prov_id(node.id)] = attrs
        else:
            if node.kind in PLAN_KINDS:
                attrs["prov:type"] = "prov:Plan"
            doc["entity"][_prov_id(node.id)] = attrs
    relations: dict[str, dict[str, dict]] = defaultdict(dict)
    for edge in subgraph.edges:
        if edge.src not in nodes or edge.dst not in nodes:
            continue
        relation = _prov_relation(edge, nodes)
        if relation is not None:
            name, item = relation
            relations[name][f"mlgov:edge-{edge.id}"] = item
    for name, items in relations.items():
        doc[name] = items
    doc["entity"] = doc["entity"] or {}
    return doc


def _prov_relation(edge: GraphEdge, nodes: dict[int, GraphNode]) -> tuple[str, dict[str, Any]] | None:
    """(PROV relation, its item) for an edge between two nodes of the export; None for an edge from
    an entity to an activity, which PROV has no relation for."""
    src, dst = _prov_id(edge.src), _prov_id(edge.dst)
    if nodes[edge.src].kind in ACTIVITY_KINDS:
        if edge.kind == EdgeKind.PRODUCED:
            return "wasGeneratedBy", {"prov:entity": dst, "prov:activity": src}
        if edge.kind == EdgeKind.INSTANCE_OF:
            return "wasAssociatedWith", {
                "prov:activity": src,
                "prov:agent": "mlgov:service",
                "prov:plan": dst,
            }
        # USED, BUILT_FROM, RAN_IN
        return "used", {"prov:activity": src, "prov:entity": dst, "mlgov:kind": edge.kind}
    if edge.kind == EdgeKind.VERSION_OF:
        return "specializationOf", {"prov:specificEntity": src, "prov:generalEntity": dst}
    if edge.kind == EdgeKind.DEPLOYED_AS:
        return "wasDerivedFrom", {"prov:generatedEntity": dst, "prov:usedEntity": src}
    if nodes[edge.dst].kind not in ACTIVITY_KINDS:
        return "wasDerivedFrom", {
            "prov:generatedEntity": src,
            "prov:usedEntity": dst,
            "mlgov:kind": edge.kind,
        }
    return None


def _prov_attributes(node: GraphNode) -> dict[str, Any]:
    return {
        "prov:label": node.name or node.key,
        "mlgov:kind": node.kind,
        "mlgov:key": node.key,
        "mlgov:properties": canonical_json(node.properties),
    }


# --- OpenLineage ------------------------------------------------------------------------------------
def _dataset_ref(node: GraphNode, nodes: dict[int, GraphNode], version_of: dict[int, int]) -> dict[str, Any]:
    props = node.properties
    if node.kind == NodeKind.DATASET_VERSION and node.id in version_of:
        parent = nodes[version_of[node.id]]
        namespace, name = _split(parent)
        version = props.get("version") or node.key.rsplit("@", 1)[-1]
        return {
            "namespace": namespace,
            "name": name,
            "facets": {
                "version": {
                    "_producer": PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/DatasetVersionDatasetFacet.json",
                    "datasetVersion": version,
                }
            },
        }
    namespace, name = _split(node)
    facets = {k.removeprefix("facet:"): v for k, v in props.items() if k.startswith("facet:")}
    return {"namespace": namespace, "name": name, "facets": facets}


def _split(node: GraphNode) -> tuple[str, str]:
    namespace = node.properties.get("namespace")
    if isinstance(namespace, str) and node.key.startswith(namespace + "/"):
        return namespace, node.key[len(namespace) + 1 :]
    return "mlgov", node.key


def openlineage_events(*, workspace: Workspace, root: Node, subgraph: Subgraph) -> dict[str, Any]:
    """One COMPLETE RunEvent per run in the provenance; sending them to an OpenLineage endpoint
    (this service's included) reproduces the runs, jobs, datasets and their edges."""
    nodes = {n.id: n for n in subgraph.nodes}
    version_of = {e.src: e.dst for e in subgraph.edges if e.kind == EdgeKind.VERSION_OF}
    by_run: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for edge in subgraph.edges:
        if edge.src in nodes and nodes[edge.src].kind == NodeKind.RUN:
            by_run[edge.src][edge.kind].append(edge.dst)
    events = []
    for run_id in sorted(by_run):
        run, links = nodes[run_id], by_run[run_id]
        jobs = [nodes[j] for j in links.get(EdgeKind.INSTANCE_OF, []) if j in nodes]
        namespace, job_name = _split(jobs[0]) if jobs else ("mlgov", f"run-{run.key}")
        run_facets = {
            k.removeprefix("facet:"): v for k, v in run.properties.items() if k.startswith("facet:")
        }
        job_facets = (
            {k.removeprefix("facet:"): v for k, v in jobs[0].properties.items() if k.startswith("facet:")}
            if jobs
            else {}
        )
        events.append(
            {
                "eventType": "COMPLETE",
                "eventTime": run.properties.get("event:COMPLETE") or timezone.now().isoformat(),
                "producer": PRODUCER,
                "schemaURL": SCHEMA_URL,
                "run": {"runId": run.key, "facets": run_facets},
                "job": {"namespace": namespace, "name": job_name, "facets": job_facets},
                "inputs": [
                    _dataset_ref(nodes[i], nodes, version_of)
                    for i in links.get(EdgeKind.USED, [])
                    if i in nodes
                ],
                "outputs": [
                    _dataset_ref(nodes[o], nodes, version_of)
                    for o in links.get(EdgeKind.PRODUCED, [])
                    if o in nodes
                ],
            }
        )
    return {
        "workspace": workspace.slug,
        "root": {"id": root.pk, "kind": root.kind, "key": root.key},
        "events": events,
    }
