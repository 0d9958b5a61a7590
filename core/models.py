"""Workspaces, memberships, API tokens, artifacts and the hash-chained audit log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.roles import Role

GENESIS_HASH = "0" * 64


class Workspace(models.Model):
    """A tenant. Every object of the service belongs to exactly one workspace.

    The head of the workspace's audit chain lives on this row: appending locks the row, so
    concurrent appends queue up instead of forking the chain.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    # Explanations may load pickle/joblib models only when an admin has switched this on.
    allow_pickle_models = models.BooleanField(default=False)
    audit_head_seq = models.BigIntegerField(default=0)
    audit_head_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    # The sequence number of the last audit event that changed something a gate reads (every event but
    # the read-only ones in core.audit.READ_ONLY_ACTIONS). Gate evaluations are cached against it.
    evidence_seq = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "workspace"], name="membership_unique_user")]
        ordering = ["workspace", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} as {self.role}"


class InvitationState(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"


class Invitation(models.Model):
    """An admin's offer of a role in a workspace; the membership exists once the user accepts it.
    Addressed by username or by e-mail address, so inviting says nothing about whether such a user
    exists. It carries a one-time sign-up link (only the SHA-256 of its secret is kept): whoever has
    no account yet sets their password through it; it expires, and works once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    username = models.CharField(max_length=150, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    role = models.CharField(max_length=32, choices=Role.choices)
    state = models.CharField(max_length=16, choices=InvitationState.choices, default=InvitationState.PENDING)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    link_digest = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    link_expires_at = models.DateTimeField(null=True, blank=True)
    link_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "username"],
                condition=models.Q(state="pending") & ~models.Q(username=""),
                name="invitation_one_pending_per_user",
            ),
            models.UniqueConstraint(
                fields=["workspace", "email"],
                condition=models.Q(state="pending") & ~models.Q(email=""),
                name="invitation_one_pending_per_email",
            ),
            models.CheckConstraint(
                condition=~models.Q(username="") | ~models.Q(email=""),
                name="invitation_has_an_addressee",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.addressee} invited to {self.workspace} as {self.role} ({self.state})"

    @property
    def addressee(self) -> str:
        return self.username or self.email


class ExternalIdentity(models.Model):
    """A person's identity at the organisation's OpenID Connect provider (core/sso.py): the
    provider's (issuer, subject) names one user for good, whatever their username or e-mail address
    later become (an address is never used to match an account)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_identities"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="external_identity_unique")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer} ({self.user})"


class ApiToken(models.Model):
    """A bearer token bound to one user in one workspace. Only the SHA-256 of the secret is kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Set (not stored) by tokens.api_token_authenticate: the owner's membership of the workspace,
    # read in the same query as the token. Absent on tokens read any other way.
    member_id: int | None
    member_role: str | None

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:
        return (now or timezone.now()) >= self.expires_at


class Artifact(models.Model):
    """A stored file, addressed by the SHA-256 of its bytes. The same bytes are stored once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="artifacts")
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    media_type = models.CharField(max_length=100)
    filename = models.CharField(max_length=255, blank=True)
    storage_key = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "sha256"], name="artifact_unique_digest"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename or self.sha256[:12]} ({self.media_type})"


class AuditEvent(models.Model):
    """One entry of a workspace's append-only audit chain.

    hash = sha256(prev_hash + canonical JSON of the event); see core.audit. On PostgreSQL a trigger
    rejects UPDATE and DELETE on this table (migration 0002).
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="audit_events")
    seq = models.BigIntegerField()
    created_at = models.DateTimeField()
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=100)
    target = models.CharField(max_length=300, blank=True)
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "seq"], name="audit_unique_seq")]
        indexes = [
            models.Index(fields=["workspace", "action"]),
            models.Index(fields=["workspace", "actor"]),
            models.Index(fields=["workspace", "target"]),
            models.Index(fields=["workspace", "created_at"]),
        ]
        ordering = ["workspace", "seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target}"


class AuditCheckpoint(models.Model):
    """A signed statement of where a workspace's audit chain stood: its head's sequence number and hash
    at a time, signed with the service's Ed25519 key. Whoever keeps a copy can later prove that the
    chain still extends it (`mlgov verify-audit --checkpoint`): rewriting the table, even as the
    database's administrator, changes the hash at that sequence number."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="audit_checkpoints")
    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    signature = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "seq"], name="audit_checkpoint_unique_seq")
        ]
        ordering = ["workspace", "-seq"]

    def __str__(self) -> str:
        return f"checkpoint of {self.workspace_id} at #{self.seq}"
