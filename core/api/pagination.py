"""Every list endpoint paginates the same way: ?page=N&page_size=M (at most 500), answering
{"count", "next", "previous", "results"}. A page or page size that is not a positive whole number is
a 400 naming the parameter; a page past the end is a 404.

The API's base views name this class as their `pagination_class`: `paginated()` answers with it and
drf-spectacular documents with it, so a view that declares its items
(`@extend_schema(responses=ItemOutput(many=True))`) is documented as one page of them, with the two
query parameters."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


def _positive(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ValidationError({name: [f"must be a whole number of at least 1, not {raw[:40]!r}"]})
    return int(raw)


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500
    page_query_description = "The page to answer, from 1 (a page past the end is a 404)."
    page_size_query_description = f"Items per page (at most {max_page_size})."

    def get_page_number(self, request, paginator):
        number = _positive(request, self.page_query_param)
        return 1 if number is None else number

    def get_page_size(self, request):
        size = _positive(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        envelope = super().get_paginated_response_schema(schema)
        envelope["required"] = ["count", "next", "previous", "results"]  # all four, always
        properties = envelope["properties"]
        properties["count"]["minimum"] = 0
        properties["next"]["example"] = "https://mlgov.example.org/api/v1/models?page=3"
        properties["previous"]["example"] = "https://mlgov.example.org/api/v1/models?page=1"
        return envelope

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters
