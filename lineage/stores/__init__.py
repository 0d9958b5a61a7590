"""Graph stores: the same queries answered by recursive SQL or by a Bolt graph database."""

from __future__ import annotations

from django.conf import settings

from core.models import Workspace
from lineage.stores.base import GraphStore, Subgraph
from lineage.stores.neo4j import Neo4jGraphStore, shared_connection
from lineage.stores.sql import SqlGraphStore


def get_graph_store(workspace: Workspace) -> GraphStore:
    """The configured store: Neo4j (or a Bolt-compatible server) when NEO4J_URI is set, else SQL."""
    if settings.NEO4J_URI:
        return Neo4jGraphStore(workspace, shared_connection())
    return SqlGraphStore(workspace)


__all__ = ["GraphStore", "Subgraph", "get_graph_store"]
