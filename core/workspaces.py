"""Workspaces, memberships and invitations: the services (writes). Their reads are in core/selectors.py."""

from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_append
from core.errors import ApplicationError, Conflict, Forbidden, NotFound
from core.invitation_links import addressed_to, link_issue, link_refusal, normalise_email
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


def _membership_create(
    *, workspace: Workspace, actor: Actor, user, role: str, extra: dict | None = None
) -> Membership:
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
        payload={"role": role, **(extra or {})},
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


def _invitation_conflict(workspace: Workspace, username: str, email: str) -> None:
    members = Membership.objects.filter(workspace=workspace)
    if username and members.filter(user__username=username).exists():
        raise Conflict(f"{username} is already a member", field="username")
    if email and members.filter(user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member's address", field="email")


@transaction.atomic
def invitation_create(
    *, workspace: Workspace, actor: Actor, role: str, username: str = "", email: str = ""
) -> tuple[Invitation, str]:
    """Invite `username` or `email` (one of them) to the workspace with `role`, and issue the
    invitation's one-time link: (invitation, the link's secret, shown once). Nobody becomes a member
    without accepting, and the answer is the same whether or not such a user exists (no one learns
    who has an account). Inviting again while an invitation is pending sets its role and issues a
    new link (the previous one stops working)."""
    username, email = username.strip(), normalise_email(email)
    if bool(username) == bool(email):
        raise ApplicationError("give either a username or an e-mail address", field="username")
    _invitation_conflict(workspace, username, email)
    addressed = {"username": username} if username else {"email": email}
    pending = Invitation.objects.select_for_update().filter(
        workspace=workspace, state=InvitationState.PENDING
    )
    invitation = pending.filter(**addressed).first()
    if invitation is None:
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    workspace=workspace, role=role, invited_by=actor.user, **addressed
                )
        except IntegrityError:  # the same invitation made at the same moment by another request
            invitation = pending.get(**addressed)
    invitation.role = role
    secret = link_issue(invitation)  # saves the role with the new link
    audit_append(
        workspace=workspace,
        actor=actor,
        action="invitation.create",
        target=f"user:{username}" if username else f"email:{email}",
        payload={
            "role": role,
            "invitation": str(invitation.pk),
            "link_expires_at": invitation.link_expires_at.isoformat() if invitation.link_expires_at else None,
        },
    )
    return invitation, secret


def _pending(invitation_id, *addressed: Q, **where) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("workspace")
        .filter(*addressed, pk=invitation_id, state=InvitationState.PENDING, **where)
        .first()
    )
    if invitation is None:
        raise NotFound("no pending invitation with this id")
    return invitation


@transaction.atomic
def invitation_answer(*, invitation_id, user, accept: bool) -> Invitation:
    """The invited user accepts (the membership is made) or declines. Only the invited user can (by
    username, or by the e-mail address on their account); it uses up the invitation's link."""
    invitation = _pending(invitation_id, addressed_to(user))
    invitation.state = InvitationState.ACCEPTED if accept else InvitationState.DECLINED
    invitation.decided_at = timezone.now()
    invitation.username = invitation.username or user.get_username()
    if accept:
        invitation.link_used_at = invitation.decided_at
    invitation.save(update_fields=["state", "decided_at", "username", "link_used_at"])
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
def membership_change_role(
    *, membership: Membership, actor: Actor, role: str, extra: dict | None = None
) -> Membership:
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
        payload={"role": role, "previous_role": previous, **(extra or {})},
    )
    return locked


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor, extra: dict | None = None) -> None:
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
        payload={"role": membership.role, **(extra or {})},
    )


@transaction.atomic
def membership_set(*, workspace: Workspace, actor: Actor, user, role: str | None, extra: dict) -> None:
    """Make `user`'s role in `workspace` `role` (None: no membership), as an outside source says
    (single sign-on's group mapping): created, changed or removed, each audited with `extra`."""
    current = Membership.objects.select_for_update().filter(workspace=workspace, user=user).first()
    if current is None and role:
        _membership_create(workspace=workspace, actor=actor, user=user, role=role, extra=extra)
    elif current is not None and role and current.role != role:
        membership_change_role(membership=current, actor=actor, role=role, extra=extra)
    elif current is not None and not role:
        membership_remove(membership=current, actor=actor, extra=extra)


def _ensure_another_admin(membership: Membership) -> None:
    # Lock every admin row of the workspace so two admins cannot demote each other at once.
    admins = list(
        Membership.objects.select_for_update()
        .filter(workspace_id=membership.workspace_id, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )
    if admins == [membership.pk]:
        raise Conflict("a workspace must keep at least one admin", field="role")


# --- joining through an invitation's link (core/invitation_links.py) ---------------------------------


def _locked(invitation_id) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update(of=("self",)).select_related("workspace").get(pk=invitation_id)
    )
    if link_refusal(invitation):
        raise Conflict("this invitation link has just been used or withdrawn")
    return invitation


@transaction.atomic
def link_sign_up(*, invitation_id, username: str, password: str):
    """Create the invited person's account through the link, make them a member with the invited
    role and use the link up, all or nothing. Returns the new user."""
    invitation = _locked(invitation_id)
    username = invitation.username or username.strip()
    if not username:
        raise ApplicationError("choose a username", field="username")
    users = get_user_model().objects
    if users.filter(username__iexact=username).exists():
        raise Conflict("an account with this username exists: sign in to accept", field="username")
    user = users.model(username=username, email=invitation.email)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        raise ApplicationError(" ".join(error.messages), field="password") from None
    user.set_password(password)
    user.save()
    now = timezone.now()
    invitation.username, invitation.state = username, InvitationState.ACCEPTED
    invitation.decided_at = invitation.link_used_at = now
    invitation.save(update_fields=["username", "state", "decided_at", "link_used_at"])
    audit_append(
        workspace=invitation.workspace,
        actor=Actor(user=user),
        action="invitation.sign_up",
        target=f"user:{username}",
        payload={"invitation": str(invitation.pk), "role": invitation.role},
    )
    _membership_create(
        workspace=invitation.workspace, actor=Actor(user=user), user=user, role=invitation.role
    )
    return user


def link_accept(*, invitation_id, user) -> Invitation:
    """A signed-in person accepts through the link: only the one it is addressed to."""
    if not Invitation.objects.filter(addressed_to(user), pk=invitation_id).exists():
        raise Forbidden("this invitation is addressed to someone else")
    return invitation_answer(invitation_id=invitation_id, user=user, accept=True)
