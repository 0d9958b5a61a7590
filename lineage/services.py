"""Writes to the lineage graph: one transaction per batch, idempotent, with its outbox entries and
one audit event."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_append, refusals_audited
from core.canonical_json import canonical_bytes
from core.errors import ApplicationError, Conflict, FieldError
from core.models import Artifact, Workspace
from core.work import task_send_after_commit
from lineage.bulk import insert_edges, insert_nodes, insert_outbox
from lineage.kinds import NodeKind, dependency_ends
from lineage.models import Edge, Node
from lineage.openlineage import settle_run_state
from lineage.specs import Batch, NodeRef, merge_properties

CHUNK = 500
logger = logging.getLogger(__name__)


def projection_enabled() -> bool:
    """Outbox entries are written only when a graph database is configured to receive them."""
    return bool(settings.NEO4J_URI)


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# Outbox payloads: what the projection MERGEs into the graph database, built from row values.
NODE_FIELDS = ("pk", "workspace_id", "kind", "key", "name", "properties")
EDGE_FIELDS = ("pk", "workspace_id", "kind", "src_id", "dst_id", "up_id", "down_id", "properties")


def node_payload(rid: int, ws: Any, kind: str, key: str, name: str, properties: dict) -> dict[str, Any]:
    return {"rid": rid, "ws": str(ws), "kind": kind, "key": key, "name": name, "properties": properties}


def edge_payload(
    rid: int, ws: Any, kind: str, src: int, dst: int, up: int, down: int, properties: dict
) -> dict[str, Any]:
    return {
        "rid": rid,
        "ws": str(ws),
        "kind": kind,
        "src": src,
        "dst": dst,
        "up": up,
        "down": down,
        "properties": properties,
    }


def _by_kind(workspace: Workspace, refs: Iterable[NodeRef]) -> Iterator[tuple[str, QuerySet[Node]]]:
    """The workspace's nodes with these (kind, key) refs, as one query per kind and chunk of keys."""
    keys_of: dict[str, list[str]] = defaultdict(list)
    for kind, key in refs:
        keys_of[kind].append(key)
    for kind, keys in keys_of.items():
        for chunk in _chunks(keys):
            yield kind, Node.objects.filter(workspace=workspace, kind=kind, key__in=chunk)


def _load_nodes(workspace: Workspace, refs: Iterable[NodeRef]) -> dict[NodeRef, tuple[int, str, dict, Any]]:
    """(id, name, properties, artifact id) of the nodes that exist; rows, not model instances."""
    return {
        (kind, key): (pk, name, properties, artifact_id)
        for kind, nodes in _by_kind(workspace, refs)
        for key, pk, name, properties, artifact_id in nodes.values_list(
            "key", "pk", "name", "properties", "artifact_id"
        )
    }


def _load_ids(workspace: Workspace, refs: Iterable[NodeRef]) -> dict[NodeRef, int]:
    return {
        (kind, key): pk
        for kind, nodes in _by_kind(workspace, refs)
        for key, pk in nodes.values_list("key", "pk")
    }


def _check_artifacts(workspace: Workspace, batch: Batch) -> dict[str, Artifact]:
    wanted = {spec.artifact for spec in batch.nodes.values() if spec.artifact}
    found = (
        {str(a.pk): a for a in Artifact.objects.filter(workspace=workspace, pk__in=list(wanted))}
        if wanted
        else {}
    )
    missing = sorted(wanted - set(found))
    if missing:
        raise ApplicationError(
            "the batch names artifacts this workspace does not have",
            errors=[FieldError("artifact", f"no artifact {a}") for a in missing],
        )
    return found


def _check_artifacts_kept(batch: Batch, existing: dict, artifacts: dict[str, Artifact]) -> None:
    """A node's file, once recorded, is what the node is: evidence (explanations, fairness, gate
    decisions) was computed on those bytes, so another file is a new version, never a replacement."""
    errors = []
    for ref, row in existing.items():
        spec, old_artifact = batch.nodes[ref], row[3]
        if spec.artifact and old_artifact is not None and artifacts[spec.artifact].pk != old_artifact:
            errors.append(
                FieldError(
                    "artifact",
                    f"{ref[0]} {ref[1]!r} already holds artifact {old_artifact}; "
                    "a node's file cannot be replaced: record a new version",
                )
            )
    if errors:
        detail = (
            errors[0].message if len(errors) == 1 else f"{len(errors)} nodes would have their file replaced"
        )
        raise Conflict(detail, errors=errors)


@transaction.atomic
def lineage_record(
    *, workspace: Workspace, actor: Actor, batch: Batch, source: str, body: Any, audit: bool = True
) -> dict[str, int]:
    """Upsert the batch's nodes and edges. Writing the same batch twice changes nothing.
    `audit=False` is for callers that write their own audit event for the whole change."""
    artifacts = _check_artifacts(workspace, batch)
    now = timezone.now()
    outbox = projection_enabled()
    counts = {"nodes_created": 0, "nodes_updated": 0, "edges_created": 0, "edges_updated": 0}

    existing = _load_nodes(workspace, batch.nodes)
    fresh = [spec for ref, spec in batch.nodes.items() if ref not in existing]
    # ON CONFLICT DO NOTHING: a concurrent batch may create the same node; both then read it back.
    inserted = insert_nodes(
        workspace,
        now,
        [
            (s.kind, s.key, s.name, s.properties, artifacts[s.artifact].pk if s.artifact else None)
            for s in fresh
        ],
    )
    counts["nodes_created"] = len(fresh)

    _check_artifacts_kept(batch, existing, artifacts)
    updates = []
    for ref, (pk, old_name, old_properties, old_artifact) in existing.items():
        spec = batch.nodes[ref]
        properties = merge_properties(old_properties, spec.properties)
        if ref[0] == NodeKind.RUN:
            properties = settle_run_state(properties)
        name = spec.name or old_name
        artifact = artifacts[spec.artifact].pk if spec.artifact else old_artifact
        if properties != old_properties or name != old_name or artifact != old_artifact:
            updates.append(
                Node(
                    pk=pk,
                    workspace=workspace,
                    kind=ref[0],
                    key=ref[1],
                    name=name,
                    properties=properties,
                    artifact_id=artifact,
                    updated_at=now,
                )
            )
    for chunk in _chunks(updates):
        Node.objects.bulk_update(chunk, ["properties", "name", "artifact", "updated_at"])
    counts["nodes_updated"] = len(updates)

    # Only the new ids are read back: the specs hold everything else.
    ids = {ref: row[0] for ref, row in existing.items()}
    ids.update(inserted)
    # Rows a concurrent batch inserted first (or every row, where the database returns no ids).
    ids.update(_load_ids(workspace, [spec.ref for spec in fresh if spec.ref not in inserted]))
    old_ids = {row[0] for row in existing.values()}
    changed_edges = _record_edges(workspace, batch, ids, old_ids, now, counts)

    if outbox:
        payloads = [("node", node_payload(*(getattr(n, f) for f in NODE_FIELDS))) for n in updates]
        payloads += [
            ("node", node_payload(ids[s.ref], workspace.pk, s.kind, s.key, s.name, s.properties))
            for s in fresh
        ]
        payloads += [("edge", payload) for payload in changed_edges]
        insert_outbox(workspace, now, payloads)
        if payloads:
            # After commit: the drain must see the entries (core/work.py sends it; a broker that cannot
            # be reached is fine: the periodic drain or `lineage_project` applies them).
            task_send_after_commit("lineage.project_outbox")

    if not audit or not any(counts.values()):  # a batch that changed nothing is not a change
        return counts
    audit_append(
        workspace=workspace,
        actor=actor,
        action="lineage.record",
        target=f"lineage:{source}",
        payload={
            **counts,
            "nodes": len(batch.nodes),
            "edges": len(batch.edges),
            "sha256": hashlib.sha256(canonical_bytes(body)).hexdigest(),
        },
    )
    return counts


EdgeKey = tuple[int, int, str]  # (src id, dst id, kind)


def _record_edges(
    workspace: Workspace,
    batch: Batch,
    ids: dict[NodeRef, int],
    old_ids: set[int],
    now,
    counts: dict[str, int],
) -> list[dict[str, Any]]:
    """Insert the batch's new edges and merge the properties of those that exist; the outbox payloads
    of the edges that changed (none where the graph is not projected)."""
    wanted = {(ids[src], ids[dst], kind): spec for (src, dst, kind), spec in batch.edges.items()}
    existing = _existing_edges(wanted, old_ids)
    fresh = []
    for (src_id, dst_id, kind), spec in wanted.items():
        if (src_id, dst_id, kind) not in existing:
            up, down = dependency_ends(kind, src_id, dst_id)
            fresh.append((kind, src_id, dst_id, up, down, spec.properties))
    outbox = projection_enabled()
    created_ids = insert_edges(workspace, now, fresh, returning=outbox)
    counts["edges_created"] = len(fresh)
    updates = _merged_edges(workspace, wanted, existing)
    for chunk in _chunks(updates):
        Edge.objects.bulk_update(chunk, ["properties"])
    counts["edges_updated"] = len(updates)
    changed = [edge_payload(*(getattr(e, f) for f in EDGE_FIELDS)) for e in updates] if outbox else []
    if not fresh or not outbox:
        return changed
    # The outbox needs the new edges' ids: from INSERT ... RETURNING where the database gives them.
    missing = sorted({key[0] for key in wanted if key not in created_ids and key not in existing})
    created_ids.update(_edge_ids(missing, created_ids))
    return changed + [
        edge_payload(created_ids[(src, dst, kind)], workspace.pk, kind, src, dst, up, down, props)
        for kind, src, dst, up, down, props in fresh
        if (src, dst, kind) in created_ids
    ]


def _existing_edges(wanted: dict[EdgeKey, Any], old_ids: set[int]) -> dict[EdgeKey, tuple[int, dict]]:
    """(pk, properties) of the wanted edges already recorded. A node created by this batch has no
    edges yet, so only older sources need looking up."""
    existing: dict[EdgeKey, tuple[int, dict]] = {}
    src_ids = sorted({key[0] for key in wanted if key[0] in old_ids})
    for chunk in _chunks(src_ids):
        rows = Edge.objects.filter(src_id__in=chunk).values_list(
            "src_id", "dst_id", "kind", "pk", "properties"
        )
        for src_id, dst_id, kind, pk, properties in rows:
            if (src_id, dst_id, kind) in wanted:
                existing[(src_id, dst_id, kind)] = (pk, properties)
    return existing


def _merged_edges(
    workspace: Workspace, wanted: dict[EdgeKey, Any], existing: dict[EdgeKey, tuple[int, dict]]
) -> list[Edge]:
    """The existing edges whose properties the batch changes, with the merged properties."""
    updates = []
    for key, (pk, old) in existing.items():
        properties = merge_properties(old, wanted[key].properties)
        if properties != old:
            up, down = dependency_ends(key[2], key[0], key[1])
            updates.append(
                Edge(
                    pk=pk,
                    workspace=workspace,
                    kind=key[2],
                    src_id=key[0],
                    dst_id=key[1],
                    up_id=up,
                    down_id=down,
                    properties=properties,
                )
            )
    return updates


def _edge_ids(src_ids: list[int], known: dict[EdgeKey, int]) -> dict[EdgeKey, int]:
    """The ids of the edges from these sources, but for those already `known`."""
    found: dict[EdgeKey, int] = {}
    for chunk in _chunks(src_ids):
        rows = Edge.objects.filter(src_id__in=chunk).values_list("src_id", "dst_id", "kind", "pk")
        for src_id, dst_id, kind, pk in rows:
            if (src_id, dst_id, kind) not in known:
                found.setdefault((src_id, dst_id, kind), pk)
    return found


# What the ingestion endpoints call: a refused batch (a node's file replaced, 409) leaves one
# `lineage.record.refuse` audit event naming who and why; nothing of the batch is written.
lineage_ingest = refusals_audited("lineage.record", lambda kwargs: f"lineage:{kwargs['source']}")(
    lineage_record
)
