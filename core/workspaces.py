"""Workspaces and memberships: services (writes) and selectors (reads)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from core.actors import Actor
from core.audit import audit_append
from core.errors import ApplicationError, Conflict
from core.models import Membership, Workspace
from core.roles import Role


@transaction.atomic
def workspace_create(*, slug: str, name: str, actor: Actor, admin=None) -> Workspace:
    """Create a workspace; `admin` (by default the acting user) becomes its first admin."""
    if Workspace.objects.filter(slug=slug).exists():
        raise Conflict(f"a workspace called {slug!r} already exists", field="slug")
    workspace = Workspace.objects.create(slug=slug, name=name or slug)
    audit_append(
        workspace=workspace,
        actor=actor,
        action="workspace.create",
        target=f"workspace:{slug}",
        payload={"name": workspace.name},
    )
    owner = admin if admin is not None else actor.user
    if owner is not None:
        _membership_create(workspace=workspace, actor=actor, user=owner, role=Role.ADMIN)
    return workspace


@transaction.atomic
def workspace_update(*, workspace: Workspace, actor: Actor, **changes) -> Workspace:
    allowed = {"name", "allow_pickle_models"}
    changed = {k: v for k, v in changes.items() if k in allowed and getattr(workspace, k) != v}
    if not changed:
        return workspace
    Workspace.objects.filter(pk=workspace.pk).update(**changed)
    workspace.refresh_from_db()
    audit_append(
        workspace=workspace,
        actor=actor,
        action="workspace.update",
        target=f"workspace:{workspace.slug}",
        payload={"changes": changed},
    )
    return workspace


def _membership_create(*, workspace: Workspace, actor: Actor, user, role: str) -> Membership:
    try:
        with transaction.atomic():
            membership = Membership.objects.create(workspace=workspace, user=user, role=role)
    except IntegrityError:
        raise Conflict(f"{user.get_username()} is already a member", field="username") from None
    audit_append(
        workspace=workspace,
        actor=actor,
        action="membership.create",
        target=f"user:{user.get_username()}",
        payload={"role": role},
    )
    return membership


@transaction.atomic
def membership_add(*, workspace: Workspace, actor: Actor, username: str, role: str) -> Membership:
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ApplicationError(f"no active user called {username!r}", field="username")
    return _membership_create(workspace=workspace, actor=actor, user=user, role=role)


@transaction.atomic
def membership_change_role(*, membership: Membership, actor: Actor, role: str) -> Membership:
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == role:
        return locked
    if locked.role == Role.ADMIN:
        _ensure_another_admin(locked)
    previous = locked.role
    locked.role = role
    locked.save(update_fields=["role"])
    audit_append(
        workspace=locked.workspace,
        actor=actor,
        action="membership.update",
        target=f"user:{locked.user.get_username()}",
        payload={"role": role, "previous_role": previous},
    )
    return locked


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor) -> None:
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    if locked.role == Role.ADMIN:
        _ensure_another_admin(locked)
    username = locked.user.get_username()
    locked.delete()
    audit_append(
        workspace=membership.workspace,
        actor=actor,
        action="membership.delete",
        target=f"user:{username}",
        payload={"role": membership.role},
    )


def _ensure_another_admin(membership: Membership) -> None:
    # Lock every admin row of the workspace so two admins cannot demote each other at once.
    admins = list(
        Membership.objects.select_for_update()
        .filter(workspace_id=membership.workspace_id, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )
    if admins == [membership.pk]:
        raise Conflict("a workspace must keep at least one admin", field="role")


def workspaces_of_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.select_related("workspace").filter(user=user).order_by("workspace__slug")


def workspace_members(*, workspace: Workspace) -> QuerySet[Membership]:
    return Membership.objects.select_related("user").filter(workspace=workspace).order_by("user__username")
