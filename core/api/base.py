"""Base classes every API view builds on."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.pagination import Pagination
from core.permissions import HasWorkspaceScope, WorkspaceAccess


def paginated(view: APIView, request: Request, queryset: Any, serializer_class: type) -> Response:
    """One page of `queryset` as the view's `pagination_class` answers it (and the schema says)."""
    paginator = (getattr(view, "pagination_class", None) or Pagination)()
    page: list[Any] | None = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def declared_length(request: Request) -> int:
    """The request's Content-Length, 0 when absent or unreadable (checked before reading the body)."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    return int(length) if length.isdigit() else 0


def validated(serializer_class: type, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class WorkspaceAPIView(APIView):
    """A view that acts inside one workspace; `required_scopes` maps HTTP methods to scopes."""

    permission_classes = [HasWorkspaceScope]
    required_scopes: dict[str, str] = {}
    # drf-spectacular documents a list that the view answers as one page of it (core/api/pagination.py)
    pagination_class: type[Pagination] | None = Pagination

    def initial(self, request, *args, **kwargs):
        # A name in the address with a NUL in it names nothing (and PostgreSQL refuses it in a query).
        if any(isinstance(value, str) and "\x00" in value for value in kwargs.values()):
            raise NotFound("nothing here: the address contains a NUL character")
        super().initial(request, *args, **kwargs)

    @property
    def access(self) -> WorkspaceAccess:
        return self.request.access  # type: ignore[attr-defined]

    def paginated(self, request: Request, queryset: Any, serializer_class: type) -> Response:
        return paginated(self, request, queryset, serializer_class)

    @staticmethod
    def validated(serializer_class: type, data: Any) -> dict[str, Any]:
        return validated(serializer_class, data)


class UserAPIView(APIView):
    """A view about the signed-in user across workspaces (a token still sees only its own)."""

    permission_classes = [IsAuthenticated]
    pagination_class: type[Pagination] | None = Pagination
