"""OpenLineage RunEvent, DatasetEvent and JobEvent (as the openlineage-python client sends them to
Marquez's `POST /api/v1/lineage`) mapped onto the lineage graph.

- job {namespace, name}      -> Job node, key "namespace/name"; its facets kept as properties
- run {runId}                -> Run node, key runId; INSTANCE_OF the job; run facets kept
- inputs / outputs           -> Dataset nodes ("namespace/name"); with a `version` facet, a
                                DatasetVersion ("namespace/name@version") VERSION_OF the dataset;
                                the run USED its inputs and PRODUCED its outputs
- job facet sourceCodeLocation   -> Commit node (key: the commit, else the URL); run BUILT_FROM it
- run facets processing_engine / environmentVariables / environment-properties
                             -> Environment node keyed by the digest of those facets; run RAN_IN it

Facets are kept one property per facet (`facet:<name>`), so a later event of the same run adds
facets without dropping the earlier ones.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from core.canonical_json import canonical_bytes
from core.errors import ApplicationError
from lineage.kinds import EdgeKind, NodeKind
from lineage.specs import MAX_KEY, Batch, Checker, NodeRef, NodeSpec

EVENT_TYPES = {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}
ENVIRONMENT_FACETS = ("processing_engine", "environmentVariables", "environment-properties")
# A run ends once: a START or RUNNING event that arrives late (a client's retry, events out of order)
# does not take a finished run back.
_STATE_RANK = {"START": 0, "RUNNING": 1, "OTHER": 1, "COMPLETE": 2, "FAIL": 2, "ABORT": 2}


def settle_run_state(properties: dict[str, Any]) -> dict[str, Any]:
    """A Run node's `state` from every event time it has seen (`event:<TYPE>`): the furthest state,
    and of those the latest event. Applied whenever a Run's properties merge."""
    times = {
        key.removeprefix("event:"): value
        for key, value in properties.items()
        if key.startswith("event:") and isinstance(value, str) and key.removeprefix("event:") in _STATE_RANK
    }
    if not times:
        return properties
    state = max(times, key=lambda t: (_STATE_RANK[t], _instant(times[t])))
    return {**properties, "state": state}


def _instant(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, TypeError, OverflowError):
        return float("-inf")


def _facets(checker: Checker, data: dict, path: str) -> dict[str, Any]:
    facets = data.get("facets") or {}
    if not isinstance(facets, dict):
        checker.fail(f"{path}.facets", "must be an object")
        return {}
    return {f"facet:{name}": value for name, value in facets.items() if value is not None}


def _dataset(checker: Checker, batch: Batch, data: Any, path: str) -> NodeRef | None:
    obj = checker.obj(data, path)
    if obj is None:
        return None
    namespace = checker.text(obj, "namespace", path)
    name = checker.text(obj, "name", path)
    facets = _facets(checker, obj, path)
    for extra in ("inputFacets", "outputFacets"):
        if isinstance(obj.get(extra), dict):
            facets.update({f"facet:{k}": v for k, v in obj[extra].items() if v is not None})
    if not namespace or not name:
        return None
    key = _key(checker, f"{namespace}/{name}", f"{path}.name")
    if not key:
        return None
    dataset = batch.node(
        NodeSpec(NodeKind.DATASET, key, name=name, properties={"namespace": namespace, **facets})
    )
    version = (obj.get("facets") or {}).get("version") if isinstance(obj.get("facets"), dict) else None
    if (
        isinstance(version, dict)
        and isinstance(version.get("datasetVersion"), str)
        and version["datasetVersion"]
    ):
        version_key = _key(
            checker, f"{key}@{version['datasetVersion']}", f"{path}.facets.version.datasetVersion"
        )
        if not version_key:
            return None
        ref = batch.node(
            NodeSpec(
                NodeKind.DATASET_VERSION,
                version_key,
                name=name,
                properties={"namespace": namespace, "version": version["datasetVersion"]},
            )
        )
        batch.edge(EdgeKind.VERSION_OF, ref, dataset)
        return ref
    return dataset


def _job(checker: Checker, batch: Batch, data: Any, path: str) -> tuple[NodeRef | None, dict]:
    obj = checker.obj(data, path)
    if obj is None:
        return None, {}
    namespace = checker.text(obj, "namespace", path)
    name = checker.text(obj, "name", path)
    facets = _facets(checker, obj, path)
    key = _key(checker, f"{namespace}/{name}", f"{path}.name") if namespace and name else ""
    if not key:
        return None, {}
    ref = batch.node(NodeSpec(NodeKind.JOB, key, name=name, properties={"namespace": namespace, **facets}))
    return ref, facets


def _key(checker: Checker, key: str, path: str) -> str:
    """A node key made of several fields (`namespace/name`, `...@version`): within the key limit."""
    if len(key) > MAX_KEY:
        checker.fail(path, f"the node key it makes is {len(key)} characters; at most {MAX_KEY}")
        return ""
    return key


def openlineage_batch(event: Any) -> Batch:
    """Validate one OpenLineage event into a Batch; a bad event is a 400 naming the field."""
    checker, batch = Checker(), Batch()
    obj = checker.obj(event, "event")
    if obj is None:
        raise ApplicationError("an OpenLineage event must be a JSON object", errors=checker.errors)
    if "dataset" in obj and "job" not in obj:
        _dataset(checker, batch, obj["dataset"], "dataset")
    elif "run" in obj:
        _run_event(checker, batch, obj)
    elif "job" in obj:
        job, _ = _job(checker, batch, obj["job"], "job")
        for direction, edge in (("inputs", EdgeKind.USED), ("outputs", EdgeKind.PRODUCED)):
            for ref in _datasets(checker, batch, obj, direction):
                if job:
                    batch.edge(edge, job, ref)
    else:
        checker.fail("event", "not a RunEvent (run, job), JobEvent (job) or DatasetEvent (dataset)")
    if checker.errors:
        raise ApplicationError(
            "the OpenLineage event is not valid; nothing was recorded", errors=checker.errors
        )
    return batch


def _datasets(checker: Checker, batch: Batch, obj: dict, name: str) -> list[NodeRef]:
    items = obj.get(name) or []
    if not isinstance(items, list):
        checker.fail(name, "must be a list")
        return []
    refs = [_dataset(checker, batch, item, f"{name}[{i}]") for i, item in enumerate(items)]
    return [ref for ref in refs if ref]


def _run_event(checker: Checker, batch: Batch, obj: dict) -> None:
    event_type = _event_type(checker, obj)
    run = checker.obj(obj.get("run"), "run") or {}
    run_id = checker.text(run, "runId", "run")
    run_facets = _facets(checker, run, "run")
    job, job_facets = _job(checker, batch, obj.get("job"), "job")
    inputs = _datasets(checker, batch, obj, "inputs")
    outputs = _datasets(checker, batch, obj, "outputs")
    if not run_id or job is None:
        return
    properties = _run_properties(obj, event_type, run_facets)
    run_ref = batch.node(NodeSpec(NodeKind.RUN, run_id, properties=properties))
    batch.edge(EdgeKind.INSTANCE_OF, run_ref, job)
    for ref in inputs:
        batch.edge(EdgeKind.USED, run_ref, ref)
    for ref in outputs:
        batch.edge(EdgeKind.PRODUCED, run_ref, ref)
    _commit(checker, batch, run_ref, job_facets)
    _environment(batch, run_ref, run_facets)


def _event_type(checker: Checker, obj: dict) -> Any:
    event_type = obj.get("eventType")
    if event_type is not None and (not isinstance(event_type, str) or event_type not in EVENT_TYPES):
        checker.fail(
            "eventType",
            f"unknown event type {event_type!r}; expected one of {', '.join(sorted(EVENT_TYPES))}",
        )
    return event_type


def _run_properties(obj: dict, event_type: Any, run_facets: dict[str, Any]) -> dict[str, Any]:
    """The Run node's properties: its facets, the event's state and time, and who produced it."""
    properties: dict[str, Any] = dict(run_facets)
    if event_type:
        properties["state"] = event_type
        if isinstance(obj.get("eventTime"), str):
            properties[f"event:{event_type}"] = obj["eventTime"]
    if isinstance(obj.get("producer"), str):
        properties["producer"] = obj["producer"]
    return properties


def _commit(checker: Checker, batch: Batch, run_ref: NodeRef, job_facets: dict[str, Any]) -> None:
    """The commit the job's sourceCodeLocation facet names (its version, else its URL): BUILT_FROM."""
    location = job_facets.get("facet:sourceCodeLocation")
    if not isinstance(location, dict) or not (location.get("version") or location.get("url")):
        return
    commit_key = _key(
        checker, str(location.get("version") or location.get("url")), "job.facets.sourceCodeLocation.version"
    )
    if commit_key:
        commit = batch.node(
            NodeSpec(NodeKind.COMMIT, commit_key, properties={"sourceCodeLocation": location})
        )
        batch.edge(EdgeKind.BUILT_FROM, run_ref, commit)


def _environment(batch: Batch, run_ref: NodeRef, run_facets: dict[str, Any]) -> None:
    """The environment the run's facets describe, keyed by their digest: RAN_IN."""
    environment = {
        name: run_facets[f"facet:{name}"] for name in ENVIRONMENT_FACETS if f"facet:{name}" in run_facets
    }
    if environment:
        digest = hashlib.sha256(canonical_bytes(environment)).hexdigest()[:16]
        env_ref = batch.node(NodeSpec(NodeKind.ENVIRONMENT, f"env-{digest}", properties=environment))
        batch.edge(EdgeKind.RAN_IN, run_ref, env_ref)
