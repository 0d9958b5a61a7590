"""The API reads JSON bodies (artifact uploads have their own parsers). A body nested too deeply for
the decoder is a 400 like any other malformed JSON, not a 500. A NUL character (\\u0000) in a string
or key is refused naming where it is: PostgreSQL cannot store it in text or jsonb. Views whose
storage keeps NUL (lineage keys, names and properties) set `accepts_nul = True`."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply") from None
        view = (parser_context or {}).get("view")
        if not getattr(view, "accepts_nul", False):
            where = nul_path(data)
            if where is not None:
                raise ParseError(f"{where or 'the body'}: text must not contain NUL (\\u0000)")
        return data


def nul_path(value: Any, path: str = "") -> str | None:
    """Where the first NUL character is in parsed JSON (`content.model_details.name`), or None."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    return where
                stack.append((child, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None
