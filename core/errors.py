"""The application's error type. Services raise it; one handler turns it into problem details."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ApplicationError(Exception):
    """A failure a client can act on. `status` is the HTTP status the API answers with."""

    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        errors: list[FieldError] | None = None,
        extra: dict | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.extra = dict(extra or {})  # RFC 9457 extension members, e.g. the budget left
        self.errors = list(errors or [])
        if field is not None:
            self.errors.append(FieldError(field, detail))


class Forbidden(ApplicationError):
    status = 403
    title = "Forbidden"


class NotFound(ApplicationError):
    status = 404
    title = "Not found"


class Conflict(ApplicationError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(ApplicationError):
    status = 413
    title = "Payload too large"
