from django.urls import path

from core.api import views

urlpatterns = [
    path("health", views.HealthView.as_view(), name="health"),
    path("me", views.MeView.as_view(), name="me"),
    path("roles", views.RoleListView.as_view(), name="role-list"),
    path("workspaces", views.WorkspaceListView.as_view(), name="workspace-list"),
    path("workspace", views.WorkspaceDetailView.as_view(), name="workspace-detail"),
    path("members", views.MemberListView.as_view(), name="member-list"),
    path("members/invitations", views.WorkspaceInvitationListView.as_view(), name="member-invitation-list"),
    path(
        "members/invitations/<uuid:invitation_id>",
        views.WorkspaceInvitationDetailView.as_view(),
        name="member-invitation-detail",
    ),
    path("invitations", views.MyInvitationListView.as_view(), name="invitation-list"),
    path(
        "invitations/<uuid:invitation_id>/accept",
        views.MyInvitationAnswerView.as_view(accept=True),
        name="invitation-accept",
    ),
    path(
        "invitations/<uuid:invitation_id>/decline",
        views.MyInvitationAnswerView.as_view(accept=False),
        name="invitation-decline",
    ),
    path("members/<str:username>", views.MemberDetailView.as_view(), name="member-detail"),
    path("tokens", views.TokenListView.as_view(), name="token-list"),
    path("tokens/<uuid:token_id>", views.TokenDetailView.as_view(), name="token-detail"),
    path("artifacts", views.ArtifactListView.as_view(), name="artifact-list"),
    path("artifacts/<uuid:artifact_id>", views.ArtifactDetailView.as_view(), name="artifact-detail"),
    path(
        "artifacts/<uuid:artifact_id>/content", views.ArtifactContentView.as_view(), name="artifact-content"
    ),
    path("audit/events", views.AuditEventListView.as_view(), name="audit-event-list"),
    path("audit/events/<int:seq>", views.AuditEventDetailView.as_view(), name="audit-event-detail"),
    path("audit/verify", views.AuditVerifyView.as_view(), name="audit-verify"),
    path("audit/chain", views.AuditChainView.as_view(), name="audit-chain"),
    path("audit/export", views.AuditExportView.as_view(), name="audit-export"),
    path("audit/checkpoints", views.AuditCheckpointListView.as_view(), name="audit-checkpoint-list"),
]
