"""Who did something: a user in a session, a user through an API token, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.models import ApiToken


@dataclass(frozen=True)
class Actor:
    user: Any | None = None
    token: ApiToken | None = None
    system: str | None = None

    @property
    def label(self) -> str:
        """The actor as recorded in the audit log, e.g. `user:alice` or `token:mlg_Ab12Cd:alice`."""
        if self.token is not None:
            return f"token:{self.token.prefix}:{self.token.user.get_username()}"
        if self.user is not None:
            return f"user:{self.user.get_username()}"
        return f"system:{self.system or 'mlgov'}"

    @property
    def user_id(self) -> int | None:
        return getattr(self.user, "pk", None)


SYSTEM = Actor(system="mlgov")


def actor_from_request(request: Any) -> Actor:
    token = request.auth if isinstance(getattr(request, "auth", None), ApiToken) else None
    return Actor(user=request.user, token=token)
