"""Datasheet files as `mlgov datasheet push` and `Client.push_datasheet` read them: YAML, JSON, or
Markdown with front matter, whose `subject:` entry says which model or dataset version the document
is for and is not part of its content."""

from __future__ import annotations

import json
from typing import Any


def document_subject(text: str, fmt: str) -> dict[str, Any]:
    """The document's `subject:` entry ({"kind", "name", "version"}), or {} when it has none."""
    import yaml  # noqa: PLC0415 - a light `import mlgov`: only datasheet files need YAML

    try:
        data = yaml.safe_load(
            text.split("---", 2)[1] if fmt == "markdown" and text.startswith("---") else text
        )
    except yaml.YAMLError:
        return {}
    subject = data.get("subject") if isinstance(data, dict) else None
    return subject if isinstance(subject, dict) else {}


def document_without_subject(text: str, fmt: str) -> str:
    """The document without its `subject:` entry (which says where it goes, and is not content)."""
    import yaml  # noqa: PLC0415 - a light `import mlgov`: only datasheet files need YAML

    if fmt == "markdown" and text.startswith("---"):
        _, front, body = text.split("---", 2)
        data = yaml.safe_load(front) or {}
        data.pop("subject", None)
        return "---\n" + yaml.safe_dump(data, sort_keys=False) + "---" + body
    data = yaml.safe_load(text) or {}
    if isinstance(data, dict):
        data.pop("subject", None)
    return json.dumps(data) if fmt == "json" else yaml.safe_dump(data, sort_keys=False)
