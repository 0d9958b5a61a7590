"""The native lineage event format, validated into a Batch.

{"events": [
  {"type": "node", "kind": "DatasetVersion", "key": "adult@v2", "properties": {...},
   "artifact": "<artifact id>", "version_of": {"kind": "Dataset", "key": "adult"}},
  {"type": "edge", "kind": "DERIVED_FROM", "src": {"kind": ..., "key": ...}, "dst": {...}},
  {"type": "run", "run": {"key": "run-42", "properties": {...}}, "job": {"key": "train"},
   "inputs": [{"kind": "DatasetVersion", "key": "adult@v2"}],
   "outputs": [{"kind": "ModelVersion", "key": "income@3"}],
   "commit": {"key": "3f2a...", "properties": {"repo": "..."}},
   "environment": {"key": "py311-sklearn1.7", "properties": {...}}}
]}
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from core.errors import ApplicationError, PayloadTooLarge
from lineage.kinds import EdgeKind, NodeKind
from lineage.specs import Batch, Checker

EVENT_TYPES = ("node", "edge", "run")


def check_batch_size(events: Any, *, field: str = "events") -> list:
    if not isinstance(events, list) or not events:
        raise ApplicationError("must be a non-empty list of events", field=field)
    limit = settings.LINEAGE_MAX_BATCH_EVENTS
    if len(events) > limit:
        raise PayloadTooLarge(
            f"the batch has {len(events)} events; the limit is {limit} (LINEAGE_MAX_BATCH_EVENTS)",
            field=field,
        )
    return events


def check_event_size(checker: Checker, event: Any, path: str) -> bool:
    limit = settings.LINEAGE_MAX_EVENT_BYTES
    try:
        # The same length as the canonical form, without the cost of sorting keys.
        size = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError):
        checker.fail(path, "must be JSON without NaN or Infinity")
        return False
    if size > limit:
        checker.fail(path, f"the event is {size} bytes; the limit is {limit} bytes (LINEAGE_MAX_EVENT_BYTES)")
        return False
    return True


def native_batch(payload: Any) -> Batch:
    """Validate a native request body; any bad event rejects the whole batch, naming item and field."""
    if not isinstance(payload, dict):
        raise ApplicationError("the body must be an object with an `events` list", field="events")
    events = check_batch_size(payload.get("events"))
    checker, batch = Checker(), Batch()
    for index, event in enumerate(events):
        path = f"events[{index}]"
        if not check_event_size(checker, event, path):
            continue
        data = checker.obj(event, path)
        if data is None:
            continue
        kind = data.get("type")
        if kind == "node":
            _node_event(checker, batch, data, path)
        elif kind == "edge":
            _edge_event(checker, batch, data, path)
        elif kind == "run":
            _run_event(checker, batch, data, path)
        else:
            checker.fail(
                f"{path}.type", f"unknown event type {kind!r}; expected one of {', '.join(EVENT_TYPES)}"
            )
    if checker.errors:
        raise ApplicationError("the lineage batch is not valid; nothing was recorded", errors=checker.errors)
    return batch


def _node_event(checker: Checker, batch: Batch, data: dict, path: str) -> None:
    spec = checker.node(data, path)
    version_of = None
    if data.get("version_of") is not None:
        version_of = checker.node(data["version_of"], f"{path}.version_of")
    if spec is None or (data.get("version_of") is not None and version_of is None):
        return
    batch.node(spec)
    if version_of is not None:
        batch.node(version_of)
        batch.edge(EdgeKind.VERSION_OF, spec.ref, version_of.ref)


def _edge_event(checker: Checker, batch: Batch, data: dict, path: str) -> None:
    kind = checker.edge_kind(data, path)
    src = checker.node(data.get("src"), f"{path}.src")
    dst = checker.node(data.get("dst"), f"{path}.dst")
    props = checker.props(data, path)
    if kind and src and dst:
        batch.node(src)
        batch.node(dst)
        batch.edge(kind, src.ref, dst.ref, props)


# A run's single links: the event's field, the node it names, and the run's edge to it.
RUN_LINKS = {
    "job": (NodeKind.JOB, EdgeKind.INSTANCE_OF),
    "commit": (NodeKind.COMMIT, EdgeKind.BUILT_FROM),
    "environment": (NodeKind.ENVIRONMENT, EdgeKind.RAN_IN),
}


def _run_event(checker: Checker, batch: Batch, data: dict, path: str) -> None:
    before = len(checker.errors)
    run = checker.node(data.get("run"), f"{path}.run", kind=NodeKind.RUN)
    linked = [
        (checker.node(data[name], f"{path}.{name}", kind=node_kind), edge_kind)
        for name, (node_kind, edge_kind) in RUN_LINKS.items()
        if data.get(name) is not None
    ]
    inputs = _node_list(checker, data, "inputs", path)
    outputs = _node_list(checker, data, "outputs", path)
    if run is None or len(checker.errors) != before:
        return
    batch.node(run)
    edges = [
        *linked,
        *((spec, EdgeKind.USED) for spec in inputs),
        *((spec, EdgeKind.PRODUCED) for spec in outputs),
    ]
    for spec, edge_kind in edges:
        batch.node(spec)
        batch.edge(edge_kind, run.ref, spec.ref)
    _trained_on(batch, inputs, outputs)


def _trained_on(batch: Batch, inputs: list, outputs: list) -> None:
    """A run that reads dataset versions and writes a model version trained that model on them."""
    models = [out for out in outputs if out.kind == NodeKind.MODEL_VERSION]
    datasets = [inp for inp in inputs if inp.kind == NodeKind.DATASET_VERSION]
    for out in models:
        for inp in datasets:
            batch.edge(EdgeKind.TRAINED_ON, out.ref, inp.ref)


def _node_list(checker: Checker, data: dict, name: str, path: str) -> list:
    value = data.get(name, [])
    if not isinstance(value, list):
        checker.fail(f"{path}.{name}", "must be a list")
        return []
    specs = [checker.node(item, f"{path}.{name}[{i}]") for i, item in enumerate(value)]
    return [spec for spec in specs if spec is not None]
