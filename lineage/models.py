"""The relational record of the lineage graph, and the outbox that feeds the graph database."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from core.models import Artifact, Workspace
from lineage.fields import JSONTextField, NulSafeCharField
from lineage.kinds import EdgeKind, NodeKind


class Node(models.Model):
    """A thing in the lineage graph, identified by (kind, key) within its workspace."""

    # No separate index: the unique (workspace, kind, key) index starts with the workspace.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="lineage_nodes", db_index=False
    )
    kind = models.CharField(max_length=32, choices=NodeKind.choices)
    key = NulSafeCharField(max_length=1000)
    name = NulSafeCharField(max_length=1000, blank=True)
    properties = JSONTextField(default=dict)
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "kind", "key"], name="node_unique_key")]
        indexes = [models.Index(fields=["workspace", "kind", "name"])]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


class Edge(models.Model):
    """A typed edge from `src` to `dst`. `up`/`down` are the same two nodes ordered along the
    dependency direction, so graph walks need not know each kind's orientation."""

    # Indexes: unique (src, dst, kind), (down, up), (up, down) and dst. The other foreign keys need
    # none of their own; every extra index slows ingestion down.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, related_name="lineage_edges", db_index=False
    )
    kind = models.CharField(max_length=32, choices=EdgeKind.choices)
    src = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+", db_index=False)
    dst = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    # up/down are src/dst reordered, and src/dst carry the foreign-key constraints; checking the same
    # two rows twice more on every insert cost ingestion time for nothing.
    up = models.ForeignKey(
        Node, on_delete=models.PROTECT, related_name="down_edges", db_index=False, db_constraint=False
    )
    down = models.ForeignKey(
        Node, on_delete=models.PROTECT, related_name="up_edges", db_index=False, db_constraint=False
    )
    properties = JSONTextField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["src", "dst", "kind"], name="edge_unique")]
        indexes = [
            models.Index(fields=["down", "up"], name="edge_down_up"),
            models.Index(fields=["up", "down"], name="edge_up_down"),
        ]

    def __str__(self) -> str:
        return f"{self.src_id} -{self.kind}-> {self.dst_id}"


class OutboxEntry(models.Model):
    """A change to project into the graph database, written in the same transaction as the change.

    Entries are applied in id order by the projection task and marked done; nothing is deleted until
    it has been applied, so an unreachable graph database loses nothing.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    op = models.CharField(max_length=16)  # "node" or "edge"
    payload = JSONTextField()
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["processed_at", "id"], name="outbox_pending")]

    def __str__(self) -> str:
        return f"outbox #{self.pk} {self.op}"
