"""One contract, two stores: every test here runs on SqlGraphStore and on Neo4jGraphStore."""

from __future__ import annotations

import pytest

from tests.lineage.helpers import build_training_graph, keys, node_id, record, ref


@pytest.fixture(params=["sql", "neo4j"], autouse=True)
def store_kind(request):
    # autouse, so the graph settings are in place before any fixture records lineage
    if request.param == "neo4j":
        request.getfixturevalue("graph_settings")
    return request.param


NASTY = ["x'}) DETACH DELETE n //", "nul\x00inside", "back\\slash and \\' quote", 'say "hi"', "ünï ✓ 100%"]


@pytest.fixture
def graph(acme, alice):
    build_training_graph(acme, alice)
    return acme


def test_upstream_is_the_provenance(graph, alice, make_store):
    store = make_store(graph)
    up = store.upstream(node_id(graph, "ModelVersion", "income@1"), depth=10)
    assert keys(up) == {"income@1", "income", "r1", "train", "c1", "e1", "adult@v2", "adult@v1", "adult"}
    depth = {n.key: n.depth for n in up.nodes}
    assert depth["income@1"] == 0
    assert depth["adult@v2"] == 1  # TRAINED_ON, straight from the model version
    assert depth["r1"] == 1
    assert depth["adult@v1"] == 2
    kinds = {(e.kind) for e in up.edges}
    assert {"PRODUCED", "USED", "TRAINED_ON", "BUILT_FROM", "RAN_IN", "VERSION_OF", "DERIVED_FROM"} <= kinds
    assert up.truncated is False


def test_depth_bounds_the_walk(graph, make_store):
    store = make_store(graph)
    up = store.upstream(node_id(graph, "ModelVersion", "income@1"), depth=1)
    assert keys(up) == {"income@1", "income", "r1", "adult@v2"}


def test_kinds_filter_keeps_the_root(graph, make_store):
    store = make_store(graph)
    up = store.upstream(node_id(graph, "ModelVersion", "income@1"), depth=10, kinds=["DatasetVersion"])
    assert keys(up) == {"income@1", "adult@v2", "adult@v1"}


def test_downstream_and_impact(graph, make_store):
    store = make_store(graph)
    v1 = node_id(graph, "DatasetVersion", "adult@v1")
    assert keys(store.downstream(v1, depth=10)) == {
        "adult@v1",
        "adult@v2",
        "r1",
        "income@1",
        "prod",
        "expl-1",
    }
    impact = store.impact(v1)
    assert {(n.kind, n.key) for n in impact.nodes} == {
        ("DatasetVersion", "adult@v1"),
        ("ModelVersion", "income@1"),
        ("Deployment", "prod"),
    }


def test_shortest_path_ignores_direction(graph, make_store):
    store = make_store(graph)
    path = store.path(node_id(graph, "Commit", "c1"), node_id(graph, "Deployment", "prod"))
    assert [n.key for n in path.nodes] == ["c1", "r1", "income@1", "prod"]
    assert [e.kind for e in sorted(path.edges, key=lambda e: e.id)] == [
        "BUILT_FROM",
        "PRODUCED",
        "DEPLOYED_AS",
    ]
    assert (
        store.path(node_id(graph, "Commit", "c1"), node_id(graph, "Deployment", "prod"), max_depth=2) is None
    )


def test_provenance_of_a_model_version(graph, make_store):
    store = make_store(graph)
    prov = store.provenance(node_id(graph, "ModelVersion", "income@1"))
    assert "adult@v1" in keys(prov)
    assert "prod" not in keys(prov)


def test_cycles_do_not_hang_any_query(acme, alice, make_store):
    record(
        acme,
        alice,
        {
            "type": "edge",
            "kind": "DERIVED_FROM",
            "src": ref("DatasetVersion", "a"),
            "dst": ref("DatasetVersion", "b"),
        },
        {
            "type": "edge",
            "kind": "DERIVED_FROM",
            "src": ref("DatasetVersion", "b"),
            "dst": ref("DatasetVersion", "a"),
        },
    )
    store = make_store(acme)
    a, b = node_id(acme, "DatasetVersion", "a"), node_id(acme, "DatasetVersion", "b")
    assert keys(store.upstream(a, depth=50)) == {"a", "b"}
    assert keys(store.downstream(a, depth=50)) == {"a", "b"}
    assert keys(store.provenance(b)) == {"a", "b"}
    assert [n.key for n in store.path(a, b).nodes] == ["a", "b"]


def test_hostile_strings_are_stored_verbatim_and_harmless(acme, alice, make_store):
    events = [
        {
            "type": "node",
            "kind": "Dataset",
            "key": value,
            "name": value,
            "properties": {"note": value, value: 1},
        }
        for value in NASTY
    ]
    events.append(
        {
            "type": "edge",
            "kind": "DERIVED_FROM",
            "src": ref("Dataset", NASTY[0]),
            "dst": ref("Dataset", NASTY[1]),
        }
    )
    record(acme, alice, *events)
    store = make_store(acme)
    first = node_id(acme, "Dataset", NASTY[0])
    nodes = {n.key: n for n in store.nodes([node_id(acme, "Dataset", v) for v in NASTY])}
    assert set(nodes) == set(NASTY)
    for value in NASTY:
        assert nodes[value].name == value
        assert nodes[value].properties == {"note": value, value: 1}
    assert keys(store.upstream(first, depth=3)) == {NASTY[0], NASTY[1]}


def test_other_workspaces_are_invisible(graph, alice, mallory, umbrella, make_store):
    record(umbrella, mallory, {"type": "node", "kind": "ModelVersion", "key": "income@1"})
    store = make_store(umbrella)
    assert store.upstream(node_id(graph, "ModelVersion", "income@1"), depth=10).nodes == []
    mine = store.upstream(node_id(umbrella, "ModelVersion", "income@1"), depth=10)
    assert keys(mine) == {"income@1"}


def test_result_size_is_capped(acme, alice, make_store, settings):
    settings.LINEAGE_MAX_RESULT_NODES = 5
    record(
        acme,
        alice,
        {"type": "run", "run": {"key": "big"}, "inputs": [ref("DatasetVersion", f"d{i}") for i in range(20)]},
    )
    store = make_store(acme)
    up = store.upstream(node_id(acme, "Run", "big"), depth=2)
    assert up.truncated is True
    assert len(up.nodes) == 5


def test_impact_depth_bounds_the_walk(graph, make_store):
    store = make_store(graph)
    v1 = node_id(graph, "DatasetVersion", "adult@v1")
    # adult@v2 derives from adult@v1, income@1 was trained on adult@v2, prod deploys income@1.
    assert keys(store.impact(v1, depth=1)) == {"adult@v1"}
    assert keys(store.impact(v1, depth=2)) == {"adult@v1", "income@1"}
    assert keys(store.impact(v1, depth=3)) == {"adult@v1", "income@1", "prod"}
