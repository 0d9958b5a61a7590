"""Input serializers validate; output serializers shape. Neither writes to the database."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from rest_framework import serializers

from core.models import ApiToken, Artifact, AuditEvent, Invitation, Membership, Workspace
from core.roles import Role

# What every kind of background work answers about its progress (core/work.py), in every API.
WORK_FIELDS = [
    "state",
    "progress",
    "step",
    "error",
    "attempts",
    "created_at",
    "dispatched_at",
    "started_at",
    "heartbeat_at",
    "finished_at",
]


class WorkspaceOutput(serializers.ModelSerializer):
    class Meta:
        model = Workspace
        fields = ["id", "slug", "name", "created_at", "allow_pickle_models"]


class WorkspaceCreateInput(serializers.Serializer):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class WorkspaceUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)

    def validate(self, attrs):
        # Pickle models run code when loaded: only the operator can allow them (docs/operations.md).
        if "allow_pickle_models" in self.initial_data:
            raise serializers.ValidationError(
                {
                    "allow_pickle_models": "is set by the operator of the service "
                    "(manage.py workspace_allow_pickle), not through the API"
                }
            )
        return attrs


class MembershipOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    workspace = serializers.CharField(source="workspace.slug")

    class Meta:
        model = Membership
        fields = ["username", "workspace", "role", "created_at"]


class MembershipCreateInput(serializers.Serializer):
    username = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(choices=Role.choices)

    def to_internal_value(self, data):
        """Either a username or an e-mail address, reported with the other fields' errors."""
        errors: dict = {}
        attrs = None
        try:
            attrs = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, dict):
                raise
            errors = dict(error.detail)
        if isinstance(data, Mapping):
            given = [bool(str(data.get(name) or "").strip()) for name in ("username", "email")]
            if given[0] == given[1]:
                errors.setdefault("username", ["give either a username or an e-mail address"])
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class InvitationOutput(serializers.ModelSerializer):
    workspace = serializers.CharField(source="workspace.slug")
    invited_by = serializers.CharField(source="invited_by.username", allow_null=True, default=None)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "workspace",
            "username",
            "email",
            "role",
            "state",
            "invited_by",
            "created_at",
            "decided_at",
            "link_expires_at",
        ]


class InvitationCreatedOutput(InvitationOutput):
    link = serializers.SerializerMethodField(
        help_text="The one-time sign-up link (shown in this answer only; e-mailed when an address was given)."
    )

    mailed = serializers.SerializerMethodField(
        help_text="Whether the link was e-mailed to the address given."
    )

    class Meta(InvitationOutput.Meta):
        fields = [*InvitationOutput.Meta.fields, "link", "mailed"]

    def get_link(self, invitation) -> str:
        return self.context["link"]

    def get_mailed(self, invitation) -> bool:
        return self.context["mailed"]


class MembershipUpdateInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class TokenOutput(serializers.ModelSerializer):
    owner = serializers.CharField(source="user.username")
    workspace = serializers.CharField(source="workspace.slug")
    revoked = serializers.BooleanField(source="is_revoked")

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "owner",
            "workspace",
            "scopes",
            "created_at",
            "expires_at",
            "revoked",
            "revoked_at",
            "last_used_at",
        ]


class TokenCreatedOutput(TokenOutput):
    token = serializers.CharField(help_text="The secret. It is shown only in this response.")

    class Meta(TokenOutput.Meta):
        fields = [*TokenOutput.Meta.fields, "token"]


class TokenCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.CharField(max_length=50),
        allow_empty=False,
        required=False,
        help_text="Omitted: the owner's role's default scopes (GET /api/v1/roles lists them).",
    )
    expires_in_days = serializers.IntegerField(required=False, min_value=1)
    user = serializers.CharField(
        max_length=150, required=False, help_text="Username of the owner (admins only); yourself by default."
    )

    def validate_expires_in_days(self, value: int) -> int:
        if value > settings.API_TOKEN_MAX_DAYS:
            raise serializers.ValidationError(f"must be at most {settings.API_TOKEN_MAX_DAYS}")
        return value


class ArtifactOutput(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Artifact
        fields = ["id", "sha256", "size", "media_type", "filename", "created_by", "created_at"]


class ArtifactFilterInput(serializers.Serializer):
    media_type = serializers.CharField(required=False)
    sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", required=False)
    filename = serializers.CharField(required=False)


class AuditEventOutput(serializers.ModelSerializer):
    time = serializers.DateTimeField(source="created_at")

    class Meta:
        model = AuditEvent
        fields = ["seq", "time", "actor", "action", "target", "payload", "prev_hash", "hash"]


class AuditFilterInput(serializers.Serializer):
    actor = serializers.CharField(required=False, help_text="exact actor, or a prefix ending in '*'")
    action = serializers.CharField(required=False, help_text="exact action, or a prefix ending in '*'")
    target = serializers.CharField(required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": "must not be before since"})
        return attrs


class AuditExportInput(serializers.Serializer):
    since = serializers.DateTimeField(help_text="the period's start (ISO 8601, inclusive)")
    until = serializers.DateTimeField(help_text="the period's end (ISO 8601, inclusive)")

    def validate(self, attrs):
        if attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": "must not be before since"})
        return attrs


class CheckpointStatementOutput(serializers.Serializer):
    type = serializers.CharField()
    workspace = serializers.CharField()
    workspace_id = serializers.UUIDField()
    seq = serializers.IntegerField()
    hash = serializers.CharField()
    time = serializers.CharField()
    key_id = serializers.CharField()


class CheckpointOutput(serializers.Serializer):
    """An audit checkpoint as a file to keep: `mlgov verify-audit --checkpoint FILE` checks it."""

    id = serializers.UUIDField()
    statement = CheckpointStatementOutput()
    signature = serializers.CharField()
    algorithm = serializers.CharField()
    key_id = serializers.CharField()


class ChainInput(serializers.Serializer):
    after = serializers.IntegerField(
        required=False, default=0, min_value=0, help_text="events with a sequence number above this"
    )
    limit = serializers.IntegerField(required=False, default=500, min_value=1, max_value=2000)


class ChainEventOutput(serializers.Serializer):
    """An event with exactly the document its hash covers: hash = sha256(prev_hash + canonical JSON)."""

    seq = serializers.IntegerField()
    document = serializers.DictField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class ChainHeadOutput(serializers.Serializer):
    seq = serializers.IntegerField()
    hash = serializers.CharField()


class ChainOutput(serializers.Serializer):
    workspace = serializers.CharField()
    workspace_id = serializers.UUIDField()
    head = ChainHeadOutput()
    events = ChainEventOutput(many=True)
    next_after = serializers.IntegerField(allow_null=True, help_text="pass as `after` for the next events")


class ChainReportOutput(serializers.Serializer):
    workspace = serializers.CharField()
    intact = serializers.BooleanField()
    events = serializers.IntegerField()
    broken_at = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    summary = serializers.CharField()
