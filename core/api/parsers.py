"""The API reads JSON bodies (artifact uploads have their own parsers), within limits: a body past
API_MAX_JSON_BYTES is a 413 before it is decoded, and one nested deeper than API_MAX_JSON_DEPTH (or too
deeply for the decoder) is a 400 like any other malformed JSON, not a 500. A NUL character (\\u0000)
in a string or key is refused naming where it is: PostgreSQL cannot store it in text or jsonb. Views
whose storage keeps NUL (lineage keys, names and properties) set `accepts_nul = True`."""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.errors import PayloadTooLarge


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_JSON_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(
                f"the JSON body is larger than the limit of {limit} bytes (API_MAX_JSON_BYTES)"
            )
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply") from None
        view = (parser_context or {}).get("view")
        problem = body_problem(
            data, check_nul=not getattr(view, "accepts_nul", False), max_depth=settings.API_MAX_JSON_DEPTH
        )
        if problem is not None:
            raise ParseError(problem)
        return data


def body_problem(value: Any, *, check_nul: bool = True, max_depth: int = 64) -> str | None:
    """What is wrong with parsed JSON, naming where (`content.model_details.name: ...`), or None:
    nesting deeper than `max_depth`, or (with `check_nul`) a NUL character in a string or key."""
    stack = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > max_depth:
            return f"{where or 'the body'}: nested more than {max_depth} levels deep"
        if isinstance(item, str):
            if check_nul and "\x00" in item:
                return f"{where or 'the body'}: text must not contain NUL (\\u0000)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if check_nul and "\x00" in key:
                    return f"{where or 'the body'}: text must not contain NUL (\\u0000)"
                stack.append((child, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
    return None
