"""The Django admin, for operators to look, not to change: everything a workspace's audit chain records
(workspaces, memberships, tokens, artifacts, audit events) changes only through the services, which
write the audit event in the same transaction. An admin edit would bypass the chain and could cross
workspaces unseen, so these models are read-only here. The admin is off in production unless
ADMIN_ENABLED is set (config/urls.py)."""

from django.contrib import admin

from core.models import ApiToken, Artifact, AuditCheckpoint, AuditEvent, Invitation, Membership, Workspace


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: no add, change or delete, whoever is signed in."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["user", "role", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Workspace)
class WorkspaceAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "created_at", "audit_head_seq", "allow_pickle_models"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role"]


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ["username", "workspace", "role", "state", "created_at"]
    list_filter = ["state"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["name", "prefix", "user", "workspace", "expires_at", "revoked_at", "last_used_at"]
    exclude = ["token_hash"]


@admin.register(Artifact)
class ArtifactAdmin(ReadOnlyAdmin):
    list_display = ["filename", "media_type", "size", "sha256", "workspace", "created_at"]
    list_filter = ["media_type"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "seq", "created_at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "target"]


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ["workspace", "seq", "created_at", "key_id"]
