"""API tokens: creation (the secret is shown once), revocation, and authentication by hash."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, router, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_append
from core.errors import ApplicationError, FieldError, Forbidden
from core.models import ApiToken, Membership, Workspace
from core.roles import SCOPES, Role, default_token_scopes, scopes_for_role

TOKEN_PREFIX = "mlg_"  # noqa: S105  (a public marker, not a secret)
# last_used_at is refreshed at most this often, so busy tokens do not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_digest(raw: str) -> str:
    # A fast hash is right here: tokens carry 256 bits of randomness, so there is nothing to brute-force.
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _default_scopes(role: str, caller_scopes: frozenset[str] | None) -> list[str]:
    """The role's default token scopes, less those the calling token does not hold."""
    defaults = default_token_scopes(role)
    scopes = sorted(defaults if caller_scopes is None else defaults & caller_scopes)
    if not scopes:
        raise ApplicationError(
            f"the token making this request holds none of the default scopes of {role}: name the scopes",
            field="scopes",
        )
    return scopes


def api_token_create(
    *,
    workspace: Workspace,
    actor: Actor,
    user,
    name: str,
    scopes: list[str] | None,
    expires_in_days: int | None = None,
    caller_scopes: frozenset[str] | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for `user` in `workspace`. Returns the token and its secret, shown only once.

    A member may create tokens for themself. A workspace admin may also create them for members with
    the `ci` role (pipelines' service accounts); a person's token is made by that person, so that no
    one can act, or approve, as another. The scopes must be ones the owner's role allows and, where
    the request came with a token (`caller_scopes`), ones that token holds: a token never mints a
    wider one. Without `scopes`, the token gets the owner's role's default set
    (`core.roles.DEFAULT_TOKEN_SCOPES`), less any scope the calling token does not hold.
    """
    actor_membership = Membership.objects.filter(workspace=workspace, user=actor.user).first()
    if actor.user is None or actor_membership is None:
        raise ApplicationError("you are not a member of this workspace")
    owner_membership = Membership.objects.filter(workspace=workspace, user=user).first()
    if user.pk != actor.user.pk:
        if actor_membership.role != Role.ADMIN or (
            caller_scopes is not None and "workspace:admin" not in caller_scopes
        ):
            raise Forbidden("only a workspace admin may create tokens for another member", field="user")
        if owner_membership is not None and owner_membership.role != Role.CI:
            raise Forbidden(
                f"{user.get_username()} is a person ({owner_membership.role}): they create their own "
                "tokens; an admin creates tokens only for members with the ci role",
                field="user",
            )
    if owner_membership is None:
        raise ApplicationError(f"{user.get_username()} is not a member of this workspace", field="user")

    if scopes is None:
        scopes = _default_scopes(owner_membership.role, caller_scopes)
    errors = _scope_errors(scopes, scopes_for_role(owner_membership.role), owner_membership.role)
    if caller_scopes is not None:
        errors += [
            FieldError(f"scopes[{i}]", f"the token making this request does not hold {scope!r}")
            for i, scope in enumerate(scopes)
            if scope in scopes_for_role(owner_membership.role) and scope not in caller_scopes
        ]
    days = settings.API_TOKEN_DEFAULT_DAYS if expires_in_days is None else expires_in_days
    if not 1 <= days <= settings.API_TOKEN_MAX_DAYS:
        errors.append(
            FieldError("expires_in_days", f"must be between 1 and {settings.API_TOKEN_MAX_DAYS} days")
        )
    if errors:
        raise ApplicationError("the token request is not valid", errors=errors)

    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            workspace=workspace,
            name=name,
            prefix=raw[: len(TOKEN_PREFIX) + 6],
            token_hash=token_digest(raw),
            scopes=sorted(set(scopes)),
            created_by=actor.user,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        audit_append(
            workspace=workspace,
            actor=actor,
            action="token.create",
            target=f"token:{token.id}",
            payload={
                "name": name,
                "owner": user.get_username(),
                "prefix": token.prefix,
                "scopes": token.scopes,
                "expires_at": token.expires_at.isoformat(),
            },
        )
    return token, raw


def _scope_errors(scopes: list[str], allowed: frozenset[str], role: str) -> list[FieldError]:
    if not scopes:
        return [FieldError("scopes", "name at least one scope")]
    errors = []
    for index, scope in enumerate(scopes):
        if scope not in SCOPES:
            errors.append(FieldError(f"scopes[{index}]", f"unknown scope {scope!r}"))
        elif scope not in allowed:
            errors.append(FieldError(f"scopes[{index}]", f"the role {role} does not allow {scope!r}"))
    return errors


def api_token_revoke(*, token: ApiToken, actor: Actor) -> bool:
    """Revoke a token. Returns False when it was already revoked (nothing changes then)."""
    with transaction.atomic():
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not changed:
            return False
        audit_append(
            workspace=token.workspace,
            actor=actor,
            action="token.revoke",
            target=f"token:{token.id}",
            payload={"name": token.name, "owner": token.user.get_username(), "prefix": token.prefix},
        )
    token.refresh_from_db(fields=["revoked_at"])
    return True


@functools.cache
def _token_query(db: str) -> tuple[str, list[tuple[Any, list[str], list[tuple[list, Any]]]]]:
    """The SQL that reads a token, its owner, its workspace and the owner's membership of that
    workspace in one round trip (every API request runs it), and for each model in the row its
    field names and each column's converters (as the ORM applies them). Built once per process
    from the models' metadata; the digest is the only parameter."""
    connection = connections[db]
    quote = connection.ops.quote_name
    user_model = get_user_model()
    columns: list[str] = []
    layout: list[tuple[Any, list[str], list[tuple[list, Any]]]] = []
    models: list[Any] = [("t", ApiToken), ("u", user_model), ("w", Workspace)]
    for alias, model in models:
        fields = list(model._meta.concrete_fields)
        columns += [f"{alias}.{quote(str(f.column))}" for f in fields]
        converters: list[tuple[list, Any]] = []
        for f in fields:
            col = f.get_col(model._meta.db_table)
            converters.append((connection.ops.get_db_converters(col) + f.get_db_converters(connection), col))
        layout.append((model, [f.attname for f in fields], converters))
    member = Membership._meta
    token = ApiToken._meta

    def column(meta, name: str) -> str:
        return quote(str(meta.get_field(name).column))

    owner, home = column(token, "user"), column(token, "workspace")
    user_pk, workspace_pk = column(user_model._meta, "id"), column(Workspace._meta, "id")
    # Only identifiers from the models' metadata go into the text; the digest is a parameter.
    sql = (
        f"SELECT {', '.join(columns)}, m.{column(member, 'id')}, m.{column(member, 'role')} "  # noqa: S608
        f"FROM {quote(token.db_table)} t "
        f"JOIN {quote(user_model._meta.db_table)} u ON u.{user_pk} = t.{owner} "
        f"JOIN {quote(Workspace._meta.db_table)} w ON w.{workspace_pk} = t.{home} "
        f"LEFT JOIN {quote(member.db_table)} m ON m.{column(member, 'user')} = t.{owner} "
        f"AND m.{column(member, 'workspace')} = t.{home} "
        f"WHERE t.{column(token, 'token_hash')} = %s"
    )
    return sql, layout


def _token_with_owner(digest: str) -> ApiToken | None:
    """The token with `digest`, its `user` and `workspace` loaded, and `member_id` / `member_role`
    set from the owner's membership of the workspace (None when they are no longer a member)."""
    db = router.db_for_read(ApiToken)
    connection = connections[db]
    sql, layout = _token_query(db)
    with connection.cursor() as cursor:
        cursor.execute(sql, [digest])
        row = cursor.fetchone()
    if row is None:
        return None
    instances: list[Any] = []
    start = 0
    for model, names, converters in layout:
        values = []
        for value, (chain, col) in zip(row[start : start + len(names)], converters, strict=True):
            for converter in chain:
                value = converter(value, col, connection)
            values.append(value)
        instances.append(model.from_db(db, names, values))
        start += len(names)
    token, user, workspace = instances
    token.user, token.workspace = user, workspace
    token.member_id, token.member_role = row[start], row[start + 1]
    return token


class TokenRefused(Exception):
    """The bearer token cannot be used; the message says why."""


def api_token_authenticate(raw: str) -> ApiToken:
    """Find the live token for a raw secret, or raise TokenRefused with the reason."""
    if not raw.startswith(TOKEN_PREFIX):
        raise TokenRefused("malformed token")
    token = _token_with_owner(token_digest(raw))
    if token is None:
        raise TokenRefused("unknown token")
    now = timezone.now()
    if token.is_revoked:
        raise TokenRefused("token revoked")
    if token.is_expired(now):
        raise TokenRefused("token expired")
    if not token.user.is_active:
        raise TokenRefused("token owner is inactive")
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
