"""Projection of the relational lineage record into the graph database: the outbox drain and the
full resync. Both MERGE by relational id, so running them twice, or concurrently, is harmless."""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.utils import timezone

from core.models import Workspace
from lineage.models import Edge, Node, OutboxEntry
from lineage.services import EDGE_FIELDS, NODE_FIELDS, edge_payload, node_payload
from lineage.stores.neo4j import GraphConnection, GraphUnavailable, shared_connection

logger = logging.getLogger(__name__)


def outbox_pending() -> int:
    return OutboxEntry.objects.filter(processed_at__isnull=True).count()


def outbox_drain(*, graph: GraphConnection | None = None, batch_size: int = 2000) -> int:
    """Apply pending outbox entries in id order until none are left. Returns how many were applied.

    Raises GraphUnavailable (after recording the error on the entries) when the graph database
    cannot take them; the entries stay pending for the next attempt.
    """
    graph = graph or shared_connection()
    applied = 0
    while True:
        with transaction.atomic():
            pending = OutboxEntry.objects.filter(processed_at__isnull=True).order_by("id")
            if connection.features.has_select_for_update_skip_locked:
                # Two drains at once split the work instead of applying the same entries twice.
                pending = pending.select_for_update(skip_locked=True)
            entries = list(pending[:batch_size])
            if not entries:
                return applied
            ids = [e.pk for e in entries]
            try:
                graph.ensure_schema()
                graph.apply(
                    [e.payload for e in entries if e.op == "node"],
                    [e.payload for e in entries if e.op == "edge"],
                )
            except GraphUnavailable as error:
                failure = error
            else:
                OutboxEntry.objects.filter(pk__in=ids).update(processed_at=timezone.now())
                applied += len(ids)
                continue
        _record_failure(ids, failure)
        raise failure


def _record_failure(ids: list[int], error: Exception) -> None:
    for entry in OutboxEntry.objects.filter(pk__in=ids):
        entry.attempts += 1
        entry.last_error = str(error)[:2000]
        entry.save(update_fields=["attempts", "last_error"])


def lineage_resync(
    *, workspace: Workspace | None = None, graph: GraphConnection | None = None, batch_size: int = 5000
) -> dict[str, int]:
    """Rebuild the graph database from the relational record (all workspaces, or one)."""
    graph = graph or shared_connection()
    graph.ensure_schema()
    high_water = OutboxEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    workspaces = [workspace] if workspace else list(Workspace.objects.all())
    counts = {"nodes": 0, "edges": 0}
    for ws in workspaces:
        graph.clear_workspace(str(ws.pk))
        nodes = Node.objects.filter(workspace=ws).order_by("id").values_list(*NODE_FIELDS)
        for start in range(0, nodes.count(), batch_size):
            chunk = [node_payload(*row) for row in nodes[start : start + batch_size]]
            graph.apply(chunk, [])
            counts["nodes"] += len(chunk)
        edges = Edge.objects.filter(workspace=ws).order_by("id").values_list(*EDGE_FIELDS)
        for start in range(0, edges.count(), batch_size):
            chunk = [edge_payload(*row) for row in edges[start : start + batch_size]]
            graph.apply([], chunk)
            counts["edges"] += len(chunk)
    # Everything written before the resync began is now in the graph; later entries still drain.
    pending = OutboxEntry.objects.filter(processed_at__isnull=True, id__lte=high_water)
    if workspace is not None:
        pending = pending.filter(workspace=workspace)
    pending.update(processed_at=timezone.now())
    return counts


__all__ = ["GraphUnavailable", "lineage_resync", "outbox_drain", "outbox_pending"]
