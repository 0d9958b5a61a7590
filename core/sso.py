"""Single sign-on with OpenID Connect: sign-in through the organisation's provider (the
authorisation-code flow with PKCE, by mozilla-django-oidc), users created on their first sign-in,
and the provider's groups mapped to workspace roles (OIDC_GROUP_ROLES).

What is checked, beyond the library's signature (against the provider's JWKS), algorithm and nonce
checks: the ID token's issuer, audience (and authorised party when there are several audiences) and
expiry, and that the userinfo answer is about the same subject. A person is found by the provider's
(issuer, subject) pair (core.models.ExternalIdentity), never by e-mail address: an address at the
provider cannot take over a local account that happens to share it."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView
from requests import RequestException

from core.actors import Actor
from core.errors import ApplicationError
from core.models import ExternalIdentity, Workspace
from core.roles import Role, scopes_for_role
from core.workspaces import membership_set

logger = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 60
_ENTRY = re.compile(r"^\s*(?P<group>[^=]+?)\s*=\s*(?P<workspace>[\w-]+)\s*:\s*(?P<role>\w+)\s*$")


def group_roles(raw: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """OIDC_GROUP_ROLES parsed: group -> [(workspace slug, role)]. A malformed entry or an unknown
    role is a configuration error, named."""
    raw = settings.OIDC_GROUP_ROLES if raw is None else raw
    mapping: dict[str, list[tuple[str, str]]] = {}
    for entry in filter(str.strip, raw.split(",")):
        found = _ENTRY.match(entry)
        if found is None:
            raise ImproperlyConfigured(f"OIDC_GROUP_ROLES: {entry.strip()!r} is not group=workspace:role")
        if found["role"] not in Role.values:
            raise ImproperlyConfigured(
                f"OIDC_GROUP_ROLES: {found['role']!r} is not a role ({', '.join(Role.values)})"
            )
        mapping.setdefault(found["group"], []).append((found["workspace"], found["role"]))
    return mapping


def roles_from_groups(groups: list[str]) -> dict[str, str | None]:
    """For each workspace the mapping names: the most capable role the groups give (None: none)."""
    mapping = group_roles()
    wanted: dict[str, str | None] = {slug: None for pairs in mapping.values() for slug, _ in pairs}
    for group in groups:
        for slug, role in mapping.get(group, []):
            held = wanted[slug]
            if held is None or len(scopes_for_role(role)) > len(scopes_for_role(held)):
                wanted[slug] = role
    return wanted


def memberships_from_groups(user, groups: list[str]) -> None:
    """Set the user's roles in the mapped workspaces from their groups (each change audited with
    `"via": "oidc"` and the groups). A change the workspace refuses (its last admin leaving) is
    logged and skipped; the sign-in goes on."""
    for slug, role in roles_from_groups(groups).items():
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            logger.warning("OIDC_GROUP_ROLES names workspace %r, which does not exist", slug)
            continue
        try:
            membership_set(
                workspace=workspace,
                actor=Actor(user=user),
                user=user,
                role=role,
                extra={"via": "oidc", "groups": sorted(groups)},
            )
        except ApplicationError as error:  # refused (the last admin): the sign-in goes on
            logger.warning("single sign-on: %s's role in %s left as it was: %s", user, slug, error)


def _check_registered_claims(payload: dict[str, Any]) -> None:
    """The ID token's issuer, audience, authorised party and lifetime (OpenID Connect Core 3.1.3.7)."""
    if payload.get("iss") != settings.OIDC_ISSUER:
        raise SuspiciousOperation(f"ID token issuer {payload.get('iss')!r} is not {settings.OIDC_ISSUER!r}")
    audience = payload.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if settings.OIDC_RP_CLIENT_ID not in audiences:
        raise SuspiciousOperation("ID token is not addressed to this service (aud)")
    if len(audiences) > 1 and payload.get("azp") != settings.OIDC_RP_CLIENT_ID:
        raise SuspiciousOperation("ID token's authorised party (azp) is not this service")
    expires = payload.get("exp")
    if not isinstance(expires, int | float) or expires < time.time() - CLOCK_SKEW_SECONDS:
        raise SuspiciousOperation("ID token has expired")


def _username_for(claims: dict[str, Any]) -> str:
    """preferred_username (else the address's local part), made unique with a numbered suffix."""
    wanted = claims.get("preferred_username") or (claims.get("email") or "").split("@")[0] or "user"
    base = re.sub(r"[^\w.@+-]", "-", str(wanted))[:140] or "user"
    users = get_user_model().objects
    candidate, n = base, 1
    while users.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


class OrganisationBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, with the checks above and identities kept by (iss, sub)."""

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)  # signature, algorithm, nonce
        _check_registered_claims(payload)
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        claims = dict(super().get_userinfo(access_token, id_token, payload))
        if claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("the userinfo answer is about another subject than the ID token")
        group_claim = settings.OIDC_GROUPS_CLAIM
        if group_claim not in claims and group_claim in payload:
            claims[group_claim] = payload[group_claim]
        claims["iss"] = payload["iss"]
        return claims

    def verify_claims(self, claims):
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(
            external_identities__issuer=claims["iss"], external_identities__subject=claims["sub"]
        )

    @staticmethod
    def _groups(claims) -> list[str]:
        groups = claims.get(settings.OIDC_GROUPS_CLAIM) or []
        return [str(g) for g in groups] if isinstance(groups, list) else [str(groups)]

    @staticmethod
    def _email(claims) -> str:
        """The address, only when the provider says it verified it: invitations are matched by the
        address on an account, so an address someone merely typed at the provider must not count."""
        return str(claims.get("email") or "") if claims.get("email_verified") is True else ""

    @transaction.atomic
    def create_user(self, claims):
        user = self.UserModel(username=_username_for(claims), email=self._email(claims))
        user.set_unusable_password()
        user.save()
        ExternalIdentity.objects.create(
            user=user, issuer=claims["iss"], subject=claims["sub"], last_sign_in_at=timezone.now()
        )
        logger.info("single sign-on: created %s for %s at %s", user, claims["sub"], claims["iss"])
        memberships_from_groups(user, self._groups(claims))
        return user

    @transaction.atomic
    def update_user(self, user, claims):
        if not user.is_active:
            raise SuspiciousOperation(f"{user} is deactivated")
        email = self._email(claims)
        if email and email != user.email:
            user.email = email
            user.save(update_fields=["email"])
        ExternalIdentity.objects.filter(user=user, issuer=claims["iss"], subject=claims["sub"]).update(
            last_sign_in_at=timezone.now()
        )
        memberships_from_groups(user, self._groups(claims))
        return user


class _Callback(OIDCAuthenticationCallbackView):
    """The provider's redirect back: a refused token or an unreachable provider ends on the sign-in
    page with a sentence, not an error page."""

    def get(self, request):
        try:
            return super().get(request)
        except (SuspiciousOperation, RequestException) as error:
            logger.warning("single sign-on refused: %s", error)
            return self.login_failure()

    def login_failure(self):
        messages.error(self.request, "Single sign-on failed: the provider's answer was refused. Try again.")
        return redirect("login")


def sso_start(request):
    if not settings.OIDC_ENABLED:
        raise Http404("single sign-on is not configured")
    return OIDCAuthenticationRequestView.as_view()(request)


def sso_callback(request):
    if not settings.OIDC_ENABLED:
        raise Http404("single sign-on is not configured")
    return _Callback.as_view()(request)
