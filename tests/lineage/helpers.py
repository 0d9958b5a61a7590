from __future__ import annotations

from core.actors import Actor
from lineage.models import Node
from lineage.native import native_batch
from lineage.services import lineage_record


def record(workspace, user, *events) -> dict:
    body = {"events": list(events)}
    return lineage_record(
        workspace=workspace, actor=Actor(user=user), batch=native_batch(body), source="test", body=body
    )


def ref(kind: str, key: str) -> dict:
    return {"kind": kind, "key": key}


def node_id(workspace, kind: str, key: str) -> int:
    return Node.objects.get(workspace=workspace, kind=kind, key=key).pk


def keys(subgraph) -> set[str]:
    return {n.key for n in subgraph.nodes}


def build_training_graph(workspace, user) -> None:
    """adult (Dataset) <- adult@v1, adult@v2 (adult@v2 derived from adult@v1); run r1 of job `train`
    read adult@v2 and produced income@1 (a version of model `income`), from commit c1 in env e1;
    income@1 is deployed as `prod`; an explanation of income@1 was evaluated on adult@v2."""
    record(
        workspace,
        user,
        {"type": "node", "kind": "DatasetVersion", "key": "adult@v1", "version_of": ref("Dataset", "adult")},
        {
            "type": "node",
            "kind": "DatasetVersion",
            "key": "adult@v2",
            "version_of": ref("Dataset", "adult"),
            "properties": {"rows": 48842},
        },
        {
            "type": "edge",
            "kind": "DERIVED_FROM",
            "src": ref("DatasetVersion", "adult@v2"),
            "dst": ref("DatasetVersion", "adult@v1"),
        },
        {
            "type": "run",
            "run": {"key": "r1"},
            "job": {"key": "train"},
            "inputs": [ref("DatasetVersion", "adult@v2")],
            "outputs": [ref("ModelVersion", "income@1")],
            "commit": {"key": "c1"},
            "environment": {"key": "e1"},
        },
        {"type": "node", "kind": "ModelVersion", "key": "income@1", "version_of": ref("Model", "income")},
        {
            "type": "edge",
            "kind": "DEPLOYED_AS",
            "src": ref("ModelVersion", "income@1"),
            "dst": ref("Deployment", "prod"),
        },
        {
            "type": "edge",
            "kind": "EVALUATED_ON",
            "src": ref("Explanation", "expl-1"),
            "dst": ref("DatasetVersion", "adult@v2"),
        },
        {
            "type": "edge",
            "kind": "ASSESSES",
            "src": ref("Explanation", "expl-1"),
            "dst": ref("ModelVersion", "income@1"),
        },
    )
