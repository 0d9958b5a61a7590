from django.contrib import admin

from core.models import ApiToken, Artifact, AuditEvent, Membership, Workspace


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at", "audit_head_seq"]
    readonly_fields = ["audit_head_seq", "audit_head_hash"]
    inlines = [MembershipInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "workspace", "expires_at", "revoked_at", "last_used_at"]
    readonly_fields = ["prefix", "token_hash", "last_used_at"]

    def has_add_permission(self, request):
        return False  # tokens are created through the API or `manage.py token_create`, shown once


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["filename", "media_type", "size", "sha256", "workspace", "created_at"]
    list_filter = ["media_type"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["workspace", "seq", "created_at", "actor", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "target"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
