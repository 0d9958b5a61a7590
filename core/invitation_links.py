"""An invitation's one-time link: how someone without an account joins. The admin's invitation
carries a random secret (only its SHA-256 is stored, as for API tokens); the link expires after
INVITATION_LINK_DAYS and works once. Through it, a person with no account chooses a password (and,
when invited by e-mail address, a username) and lands in the workspace with the invited role; a
person with an account signs in and accepts. A link that is used up, withdrawn or expired is
refused, and the refusal is written to the workspace's audit log."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from core.actors import Actor
from core.audit import audit_append
from core.models import Invitation, InvitationState

logger = logging.getLogger(__name__)

SECRET_BYTES = 32
REFUSAL_AUDIT_SECONDS = 600


class LinkRefused(Exception):
    """The link cannot be used: `reason` is unknown, used, withdrawn or expired."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def normalise_email(email: str) -> str:
    """The address as compared: the domain in lower case (BaseUserManager's rule), whitespace gone."""
    return BaseUserManager.normalize_email(email.strip()) if email.strip() else ""


def addressed_to(user) -> Q:
    """The invitations addressed to `user`: by username, or by the e-mail address on the account."""
    addressed = Q(username=user.get_username())
    if user.email:
        addressed |= Q(email__iexact=user.email)
    return addressed


def link_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def link_issue(invitation: Invitation) -> str:
    """Give `invitation` a new link (any earlier one stops working) and save it; returns the secret."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    invitation.link_digest = link_digest(secret)
    invitation.link_expires_at = timezone.now() + timedelta(days=settings.INVITATION_LINK_DAYS)
    invitation.link_used_at = None
    invitation.save(update_fields=["role", "link_digest", "link_expires_at", "link_used_at"])
    return secret


def link_url(secret: str, base: str) -> str:
    """The link's address: PUBLIC_URL when the operator set it, else `base` (the request's origin)."""
    origin = (settings.PUBLIC_URL or base).rstrip("/")
    return origin + reverse("invitation-link", kwargs={"secret": secret})


def link_mail(invitation: Invitation, url: str) -> bool:
    """E-mail the link to the address the invitation names (call after the invitation committed).
    False when there is no address or the mail could not be handed over (logged: the admin still
    has the link from the API's answer)."""
    recipient = invitation.email
    if not recipient:
        return False
    workspace = invitation.workspace
    inviter = invitation.invited_by.get_username() if invitation.invited_by else "An administrator"
    body = (
        f"{inviter} invited you to the workspace {workspace.name} as {invitation.get_role_display()}.\n\n"
        f"Open this link to join (it works once, until {invitation.link_expires_at:%Y-%m-%d %H:%M} UTC):\n"
        f"{url}\n\nIf you did not expect this invitation, ignore this message."
    )
    try:
        send_mail(f"Invitation to {workspace.name}", body, None, [recipient], fail_silently=False)
    except OSError as error:  # smtplib's errors and refused connections are OSErrors
        logger.warning("invitation %s: the link could not be e-mailed: %s", invitation.pk, error)
        return False
    return True


def link_refusal(invitation: Invitation) -> str:
    if invitation.link_used_at is not None or invitation.state == InvitationState.ACCEPTED:
        return "used"
    if invitation.state != InvitationState.PENDING:
        return "withdrawn"
    if invitation.link_expires_at is None or invitation.link_expires_at <= timezone.now():
        return "expired"
    return ""


def link_open(secret: str, *, address: str = "") -> Invitation:
    """The pending invitation behind `secret`, or LinkRefused. A refusal of a known link is audited
    in the invitation's workspace (committed, whatever the caller does next); an unknown secret is
    logged (it names no workspace)."""
    invitation = (
        Invitation.objects.select_related("workspace", "invited_by")
        .filter(link_digest=link_digest(secret))
        .first()
    )
    if invitation is None:
        logger.warning("invitation link refused: unknown secret (client %s)", address or "?")
        raise LinkRefused("unknown")
    reason = link_refusal(invitation)
    if not reason:
        return invitation
    # One audit event per link, reason and client in REFUSAL_AUDIT_SECONDS: whoever holds a used link
    # cannot fill the workspace's audit chain by reloading it (each refusal is still logged).
    client = hashlib.sha256(address.encode()).hexdigest()[:16]
    if cache.add(f"invitation-refused:{invitation.pk}:{reason}:{client}", 1, REFUSAL_AUDIT_SECONDS):
        with transaction.atomic():
            audit_append(
                workspace=invitation.workspace,
                actor=Actor(),
                action="invitation.link_refused",
                target=f"user:{invitation.username}" if invitation.username else f"email:{invitation.email}",
                payload={"invitation": str(invitation.pk), "reason": reason, "client": address},
            )
    else:
        logger.info("invitation link %s refused again (%s) for %s", invitation.pk, reason, address or "?")
    raise LinkRefused(reason)
