"""Validated, normalised lineage writes: what ingestion (native or OpenLineage) turns events into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import FieldError
from lineage.kinds import EDGE_KINDS, NODE_KINDS

MAX_KEY = 500
MAX_NAME = 500

NodeRef = tuple[str, str]  # (kind, key)


@dataclass(slots=True)
class NodeSpec:
    kind: str
    key: str
    name: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    artifact: str | None = None  # artifact id (uuid) in the same workspace
    ref: NodeRef = field(init=False, repr=False, compare=False)  # (kind, key); neither changes

    def __post_init__(self) -> None:
        self.ref = (self.kind, self.key)


@dataclass(slots=True)
class EdgeSpec:
    kind: str
    src: NodeRef
    dst: NodeRef
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """Nodes and edges in the order they were given; duplicates merge (later values win)."""

    nodes: dict[NodeRef, NodeSpec] = field(default_factory=dict)
    edges: dict[tuple[NodeRef, NodeRef, str], EdgeSpec] = field(default_factory=dict)

    def node(self, spec: NodeSpec) -> NodeRef:
        existing = self.nodes.get(spec.ref)
        if existing is None:
            self.nodes[spec.ref] = spec
        else:
            existing.properties = merge_properties(existing.properties, spec.properties)
            existing.name = spec.name or existing.name
            existing.artifact = spec.artifact or existing.artifact
        return spec.ref

    def edge(self, kind: str, src: NodeRef, dst: NodeRef, properties: dict | None = None) -> None:
        # An edge may name a node no event declared: it is created bare, like Marquez does.
        for ref in (src, dst):
            if ref not in self.nodes:
                self.nodes[ref] = NodeSpec(kind=ref[0], key=ref[1])
        existing = self.edges.get((src, dst, kind))
        if existing is None:
            self.edges[(src, dst, kind)] = EdgeSpec(kind, src, dst, dict(properties) if properties else {})
        elif properties:
            existing.properties = merge_properties(existing.properties, properties)


def merge_properties(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Shallow merge: keys in `new` overwrite, keys absent from `new` are kept, null removes a key."""
    merged = dict(old)
    for key, value in new.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class Checker:
    """Collects field errors with their paths (`events[3].inputs[0].kind`)."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def obj(self, value: Any, path: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return None
        return value

    def text(self, data: dict, name: str, path: str, *, required: bool = True, limit: int = MAX_KEY) -> str:
        value = data.get(name)
        if value is None or value == "":
            if required:
                self.fail(f"{path}.{name}", "is required")
            return ""
        if not isinstance(value, str):
            self.fail(f"{path}.{name}", "must be a string")
            return ""
        if len(value) > limit:
            self.fail(f"{path}.{name}", f"must be at most {limit} characters")
            return ""
        return value

    def kind(self, data: dict, path: str, allowed: frozenset[str], *, name: str = "kind") -> str:
        value = data.get(name)
        if not isinstance(value, str) or value not in allowed:
            self.fail(
                f"{path}.{name}", f"unknown kind {value!r}; expected one of {', '.join(sorted(allowed))}"
            )
            return ""
        return value

    def props(self, data: dict, path: str, name: str = "properties") -> dict[str, Any]:
        value = data.get(name, {})
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(f"{path}.{name}", "must be an object")
            return {}
        return value

    def node(self, data: Any, path: str, *, kind: str | None = None) -> NodeSpec | None:
        """A node object: {kind, key, name?, properties?, artifact?}; `kind` fixes the kind."""
        obj = self.obj(data, path)
        if obj is None:
            return None
        before = len(self.errors)
        node_kind = kind or self.kind(obj, path, NODE_KINDS)
        spec = NodeSpec(
            kind=node_kind,
            key=self.text(obj, "key", path),
            name=self.text(obj, "name", path, required=False, limit=MAX_NAME),
            properties=self.props(obj, path),
            artifact=self.text(obj, "artifact", path, required=False, limit=64) or None,
        )
        return spec if len(self.errors) == before else None

    def edge_kind(self, data: dict, path: str) -> str:
        return self.kind(data, path, EDGE_KINDS)
