"""Workspaces, memberships and invitations: the services (writes). Their reads are in core/selectors.py."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_append
from core.errors import ApplicationError, Conflict, NotFound
from core.models import Invitation, InvitationState, Membership, Workspace
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
    """Change what a workspace's admins may change: its name. (Pickle models are the operator's
    decision: `workspace_allow_pickle`.)"""
    allowed = {"name"}
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


@transaction.atomic
def workspace_allow_pickle(*, workspace: Workspace, actor: Actor, allowed: bool) -> bool:
    """Let the workspace use pickle models (where the server allows them: MODELS_ALLOW_PICKLE), or stop
    it. For operators (`manage.py workspace_allow_pickle`); no API reaches this. Returns whether it
    changed; a change is audited once, however many times it is asked for."""
    changed = Workspace.objects.filter(pk=workspace.pk, allow_pickle_models=not allowed).update(
        allow_pickle_models=allowed
    )
    workspace.refresh_from_db(fields=["allow_pickle_models"])
    if changed:
        audit_append(
            workspace=workspace,
            actor=actor,
            action="workspace.update",
            target=f"workspace:{workspace.slug}",
            payload={"changes": {"allow_pickle_models": allowed}},
        )
    return bool(changed)


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
    """Make `username` a member at once: for operators and the demo seed. The API invites instead."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ApplicationError(f"no active user called {username!r}", field="username")
    return _membership_create(workspace=workspace, actor=actor, user=user, role=role)


# --- invitations: an admin offers a role, the user accepts it -------------------------------------------


@transaction.atomic
def invitation_create(*, workspace: Workspace, actor: Actor, username: str, role: str) -> Invitation:
    """Invite `username` to the workspace with `role`. Nobody becomes a member without accepting, and the
    answer is the same whether or not such a user exists (no one learns who has an account). Inviting
    again while an invitation is pending changes its role."""
    if Membership.objects.filter(workspace=workspace, user__username=username).exists():
        raise Conflict(f"{username} is already a member", field="username")
    invitation = (
        Invitation.objects.select_for_update()
        .filter(workspace=workspace, username=username, state=InvitationState.PENDING)
        .first()
    )
    if invitation is not None and invitation.role == role:
        return invitation
    if invitation is None:
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    workspace=workspace, username=username, role=role, invited_by=actor.user
                )
        except IntegrityError:  # the same invitation made at the same moment by another request
            return Invitation.objects.get(
                workspace=workspace, username=username, state=InvitationState.PENDING
            )
    else:
        invitation.role = role
        invitation.save(update_fields=["role"])
    audit_append(
        workspace=workspace,
        actor=actor,
        action="invitation.create",
        target=f"user:{username}",
        payload={"role": role, "invitation": str(invitation.pk)},
    )
    return invitation


def _pending(invitation_id, **where) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("workspace")
        .filter(pk=invitation_id, state=InvitationState.PENDING, **where)
        .first()
    )
    if invitation is None:
        raise NotFound("no pending invitation with this id")
    return invitation


@transaction.atomic
def invitation_answer(*, invitation_id, user, accept: bool) -> Invitation:
    """The invited user accepts (the membership is made) or declines. Only the invited user can."""
    invitation = _pending(invitation_id, username=user.get_username())
    invitation.state = InvitationState.ACCEPTED if accept else InvitationState.DECLINED
    invitation.decided_at = timezone.now()
    invitation.save(update_fields=["state", "decided_at"])
    if accept:
        _membership_create(
            workspace=invitation.workspace, actor=Actor(user=user), user=user, role=invitation.role
        )
    else:
        audit_append(
            workspace=invitation.workspace,
            actor=Actor(user=user),
            action="invitation.decline",
            target=f"user:{invitation.username}",
            payload={"invitation": str(invitation.pk)},
        )
    return invitation


@transaction.atomic
def invitation_revoke(*, workspace: Workspace, actor: Actor, invitation_id) -> Invitation:
    invitation = _pending(invitation_id, workspace=workspace)
    invitation.state = InvitationState.REVOKED
    invitation.decided_at = timezone.now()
    invitation.save(update_fields=["state", "decided_at"])
    audit_append(
        workspace=workspace,
        actor=actor,
        action="invitation.revoke",
        target=f"user:{invitation.username}",
        payload={"invitation": str(invitation.pk)},
    )
    return invitation


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
