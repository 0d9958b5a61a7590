"""Sign-in throttling. After LOGIN_FAILURE_LIMIT failed sign-ins for a username within
LOGIN_FAILURE_WINDOW seconds, or LOGIN_ADDRESS_FAILURE_LIMIT from one client address, that username
(or address) may not sign in for LOGIN_LOCKOUT seconds, even with the right password. A successful
sign-in clears the username's count (not the address's: one known password must not buy another
round of guesses at other accounts).

The counts live in the shared cache (core/throttling.py), so every web process sees them. They are
enforced by the authentication backend, which covers every form that signs in (the dashboard's and
the admin's); the login view adds the page that says why, with status 429.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.core.exceptions import PermissionDenied

from core.throttling import window_hit, window_key


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind a proxy the last address in CLIENT_IP_HEADER
    (the one the proxy appended; earlier ones come from the client and prove nothing)."""
    if request is None:
        return ""
    if settings.CLIENT_IP_HEADER:
        forwarded = request.META.get(settings.CLIENT_IP_HEADER, "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def _subjects(username: str, address: str) -> list[tuple[str, int]]:
    """The throttled subjects of a sign-in attempt, each with its failure limit."""
    subjects = []
    if username and settings.LOGIN_FAILURE_LIMIT:
        # Hashed: a username may hold any character, and cache keys may not.
        digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        subjects.append((f"login:user:{digest}", settings.LOGIN_FAILURE_LIMIT))
    if address and settings.LOGIN_ADDRESS_FAILURE_LIMIT:
        subjects.append((f"login:address:{address}", settings.LOGIN_ADDRESS_FAILURE_LIMIT))
    return subjects


def login_lockout_remaining(*, username: str, address: str) -> int:
    """Seconds until this username and address may try to sign in again (0: now)."""
    subjects = _subjects(username, address)
    if not subjects:
        return 0
    until = cache.get_many([f"{key}:locked" for key, _ in subjects]).values()
    now = time.time()
    return max([0, *(math.ceil(end - now) for end in until)])


def login_failure_record(*, username: str, address: str) -> None:
    """Count a failed sign-in and lock out whatever reached its limit. Failures in the current and
    the previous window count, so any LOGIN_FAILURE_LIMIT failures within LOGIN_FAILURE_WINDOW
    seconds lock the username out."""
    window, lockout = settings.LOGIN_FAILURE_WINDOW, settings.LOGIN_LOCKOUT
    now = time.time()
    for key, limit in _subjects(username, address):
        failures = window_hit(key, window=window, now=now)
        failures += cache.get(window_key(key, window=window, now=now, back=1), 0)
        if failures >= limit:
            cache.set(f"{key}:locked", now + lockout, timeout=lockout)


def login_success_record(*, username: str) -> None:
    """Clear the username's failure count."""
    now = time.time()
    window = settings.LOGIN_FAILURE_WINDOW
    keys = [
        window_key(key, window=window, now=now, back=back)
        for key, _ in _subjects(username, "")
        for back in (0, 1)
    ]
    cache.delete_many(keys)


class ThrottledModelBackend(ModelBackend):
    """Django's username-and-password backend, refusing locked-out usernames and addresses and
    counting failures."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        username = username or ""
        address = client_address(request)
        if login_lockout_remaining(username=username, address=address):
            raise PermissionDenied  # no other backend may let it in either
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            login_failure_record(username=username, address=address)
        else:
            login_success_record(username=username)
        return user


class ThrottledLoginView(LoginView):
    """The sign-in page; a locked-out attempt gets 429, Retry-After and a message that says why.
    With single sign-on configured it offers the provider's button; PASSWORD_SIGN_IN=0 leaves only
    that (a password posted anyway is refused: no backend takes it)."""

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            sso_enabled=settings.OIDC_ENABLED,
            sso_provider=settings.OIDC_PROVIDER_NAME,
            password_sign_in=settings.PASSWORD_SIGN_IN or not settings.OIDC_ENABLED,
            **kwargs,
        )

    def post(self, request, *args, **kwargs):
        remaining = self.lockout_remaining()
        if remaining:
            return self.refuse(remaining)
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:  # the form was refused: was that the last allowed try?
            remaining = self.lockout_remaining()
            if remaining:
                return self.refuse(remaining)
        return response

    def lockout_remaining(self) -> int:
        username = self.request.POST.get("username", "")
        return login_lockout_remaining(username=username, address=client_address(self.request))

    def refuse(self, seconds: int):
        count, unit = (math.ceil(seconds / 60), "minute") if seconds >= 60 else (seconds, "second")
        wait = f"{count} {unit}{'s' if count != 1 else ''}"
        context = self.get_context_data(form=self.get_form_class()(self.request), lockout_wait=wait)
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(seconds)
        return response
