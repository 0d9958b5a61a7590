"""Documents people send as text (YAML model cards, datasheets, policies, Markdown front matter), parsed
within budgets, so that no document can make the parser or what walks its result run away.

A YAML alias refers to an earlier anchored node without copying it, so 342 bytes of nested aliases
("billion laughs") stand for billions of nodes once anything walks the result (JSON encoding,
validation, hashing). The loader counts every node as it would be expanded (an alias counts the
whole size of what it refers to) and stops at the budget; it also bounds the nesting depth and the
text's size. Each refusal is an ApplicationError naming the request field.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.conf import settings

from core.errors import ApplicationError


class _BudgetExceeded(Exception):
    pass


class BudgetedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a node budget (aliases expanded in the count) and a depth limit."""

    def __init__(self, stream: str, *, max_nodes: int, max_depth: int):
        super().__init__(stream)
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self._depth = 0
        # The expanded size of every node composed so far, by identity. A node still being composed
        # has no entry: an alias to it is a cycle.
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent, index):
        alias = self.check_event(yaml.AliasEvent)
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise _BudgetExceeded(f"it is nested more than {self.max_depth} levels deep")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if alias:
            if id(node) not in self._sizes:
                raise _BudgetExceeded("an alias refers to the node that contains it")
            return node
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes[id(item)] for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        else:
            size = 1
        if size > self.max_nodes:
            raise _BudgetExceeded(
                f"it expands to more than {self.max_nodes} values (anchors and aliases count in full)"
            )
        self._sizes[id(node)] = size
        return node


def yaml_load(
    text: str,
    *,
    field: str,
    max_bytes: int | None = None,
    max_nodes: int | None = None,
    max_depth: int | None = None,
) -> Any:
    """The data of a YAML document, or ApplicationError (400) naming `field` when it is malformed or
    past a limit: DOCUMENT_MAX_BYTES of text, DOCUMENT_MAX_NODES values, DOCUMENT_MAX_DEPTH levels."""
    max_bytes = settings.DOCUMENT_MAX_BYTES if max_bytes is None else max_bytes
    max_nodes = settings.DOCUMENT_MAX_NODES if max_nodes is None else max_nodes
    max_depth = settings.DOCUMENT_MAX_DEPTH if max_depth is None else max_depth
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise ApplicationError(
            f"the document is {size} bytes; the limit is {max_bytes} (DOCUMENT_MAX_BYTES)", field=field
        )
    loader = None
    try:
        # The reader checks the characters as the loader is made: control characters are a YAMLError.
        loader = BudgetedLoader(text, max_nodes=max_nodes, max_depth=max_depth)
        return loader.get_single_data()
    except _BudgetExceeded as error:
        raise ApplicationError(f"the document is refused: {error}", field=field) from None
    except yaml.YAMLError as error:
        raise ApplicationError(f"the document cannot be parsed as YAML: {error}", field=field) from None
    except RecursionError:  # only with limits set far above the defaults
        raise ApplicationError("the document is nested too deeply", field=field) from None
    finally:
        if loader is not None:
            loader.dispose()
