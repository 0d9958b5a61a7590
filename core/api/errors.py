"""One error format for the whole API: RFC 9457 problem details, with field-level errors.

{"type": "about:blank", "title": "Validation failed", "status": 400,
 "detail": "...", "instance": "/api/v1/...", "errors": [{"field": "scopes[0]", "message": "..."}]}
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response

from core.errors import ApplicationError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
DATABASE_RETRY_AFTER = 5  # seconds, in the Retry-After of a 503 when the database cannot be reached


def problem(
    *, status_code: int, title: str, detail: str = "", instance: str = "", errors: list[dict] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status_code, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return body


def flatten_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error structure as a flat list of {field, message}; paths like `events[2].inputs`."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a list's item (ListField, DictField errors keyed by position)
                out.extend(flatten_errors(value, f"{prefix}[{key}]"))
                continue
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            out.extend(flatten_errors(value, path))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out.extend({"field": prefix, "message": str(item)} for item in detail)
        else:
            for index, item in enumerate(detail):
                out.extend(flatten_errors(item, f"{prefix}[{index}]"))
    else:
        out.append({"field": prefix, "message": str(detail)})
    return out


def problem_exception_handler(exc: Exception, context: dict) -> Response | None:
    request = context.get("request")
    instance = request.path if request is not None else ""
    if isinstance(exc, ApplicationError):
        return _application_problem(exc, instance)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404 | RequestDataTooBig | OperationalError | InterfaceError):
        return _django_problem(exc, instance)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django log it and answer 500 (handler500 keeps the format)
    return _api_problem(exc, instance)


def _application_problem(exc: ApplicationError, instance: str) -> Response:
    errors = [{"field": e.field, "message": e.message} for e in exc.errors]
    body = problem(
        status_code=exc.status, title=exc.title, detail=exc.detail, instance=instance, errors=errors
    )
    body.update({k: v for k, v in exc.extra.items() if k not in body})
    return _response(body, exc.status, {})


def _django_problem(exc: Exception, instance: str) -> Response:
    """Django's own errors that DRF does not translate: not found, a body too large, no database."""
    if isinstance(exc, Http404):
        body = problem(status_code=404, title="Not found", detail=str(exc) or "not found", instance=instance)
        return _response(body, 404, {})
    if isinstance(exc, RequestDataTooBig):
        body = problem(status_code=413, title="Payload too large", detail=str(exc), instance=instance)
        return _response(body, 413, {})
    # The database cannot be reached (or dropped the connection): the service is unavailable,
    # not broken; say so without the error's text, which can carry the database's address.
    logger.error("database unavailable answering %s: %s", instance, exc)
    body = problem(
        status_code=503,
        title="Service unavailable",
        detail="the database cannot be reached; try again shortly",
        instance=instance,
    )
    return _response(body, 503, {"Retry-After": str(DATABASE_RETRY_AFTER)})


def _api_problem(exc: exceptions.APIException, instance: str) -> Response:
    headers: dict[str, str] = {}
    # APIView.handle_exception has already set auth_header (401) or downgraded the status to 403.
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)
    if wait:
        headers["Retry-After"] = str(int(wait))
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        body = problem(
            status_code=exc.status_code,
            title="Validation failed",
            detail="; ".join(f"{e['field'] or 'request'}: {e['message']}" for e in errors),
            instance=instance,
            errors=errors,
        )
    else:
        title = _TITLES.get(exc.status_code, "Error")
        body = problem(status_code=exc.status_code, title=title, detail=_api_detail(exc), instance=instance)
    return _response(body, exc.status_code, headers)


def _api_detail(exc: exceptions.APIException) -> str:
    detail = (
        exc.detail
        if isinstance(exc.detail, str)
        else "; ".join(e["message"] for e in flatten_errors(exc.detail))
    )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        detail = f"{detail} Send JSON with the header Content-Type: application/json."
    return str(detail)


_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    429: "Too many requests",
}


def _response(body: dict, status_code: int, headers: dict[str, str]) -> Response:
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def api_not_found(request, exception=None):
    """handler404 for paths outside DRF views: the same problem format under /api/."""
    body = problem(status_code=404, title="Not found", detail="no such resource", instance=request.path)
    return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)


def api_csrf_failure(request, reason: str = ""):
    """A session's write without its CSRF token, outside DRF's views (CSRF_FAILURE_VIEW under /api/)."""
    body = problem(
        status_code=403,
        title="Forbidden",
        detail=f"CSRF Failed: {reason} Send the csrftoken cookie's value in the X-CSRFToken header, or "
        "authenticate with an API token.",
        instance=request.path,
    )
    return JsonResponse(body, status=403, content_type=PROBLEM_CONTENT_TYPE)


def api_server_error(request):
    body = problem(status_code=500, title="Internal server error", detail="the error has been logged")
    return JsonResponse(body, status=500, content_type=PROBLEM_CONTENT_TYPE)
