"""The client's HTTP: requests to the service's API with the token, JSON answers, and every error
answer raised as ApiError with its problem-details document. Only the standard library is used."""

from __future__ import annotations

import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any


class ApiError(Exception):
    """The service answered with an error; `problem` is its problem-details document."""

    def __init__(self, status: int, problem: dict[str, Any]):
        self.status = status
        self.problem = problem
        fields = problem.get("errors", [])
        errors = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in fields)
        detail = problem.get("detail", "")
        if detail == errors or any(
            detail in (e.get("message"), f"{e.get('field')}: {e.get('message')}") for e in fields
        ):
            detail = ""  # said once, with its field
        said = "; ".join(part for part in (detail, errors) if part)
        super().__init__(" ".join(f"{status} {problem.get('title', '')}: {said}".split()))


class ServiceUnreachable(OSError):
    """No answer from the service at all (wrong MLGOV_URL, server down, network)."""


class _SameOriginAuthorization(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but send the token only to the origin it was meant for."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        origin = urllib.parse.urlsplit(req.full_url)[:2]
        if new is not None and urllib.parse.urlsplit(newurl)[:2] != origin:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_SameOriginAuthorization)


class Transport:
    """The service at `url` (default MLGOV_URL), called with `token` (default MLGOV_TOKEN)."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30):
        self.url = (url or os.environ.get("MLGOV_URL", "http://127.0.0.1:8000")).rstrip("/")
        self.token = token or os.environ.get("MLGOV_TOKEN", "")
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        params: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if json_body is not None:
            data, content_type = json.dumps(json_body).encode(), "application/json"
        with self._open(
            method, path, data=data, content_type=content_type, params=params, headers=headers
        ) as response:
            body = response.read()
        return json.loads(body) if body else None

    @contextlib.contextmanager
    def _open(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        content_type: str | None = None,
        params: dict | None = None,
        accept: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Iterator[Any]:
        """The service's response, open; an error answer raises ApiError with its problem document."""
        url = f"{self.url}/api/v1/{path.lstrip('/')}"
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        headers = {**(headers or {}), "Accept": accept}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            response = _OPENER.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = {"title": error.reason, "detail": raw.decode(errors="replace")[:500]}
            raise ApiError(error.code, problem) from None
        except urllib.error.URLError as error:
            raise ServiceUnreachable(
                f"cannot reach the service at {self.url} ({error.reason}); is MLGOV_URL right?"
            ) from None
        with response:
            yield response
