"""Core API: health, the current user, workspaces, members, tokens, artifacts and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core import selectors
from core.actors import actor_from_request
from core.api import serializers as s
from core.api.base import UserAPIView, WorkspaceAPIView, declared_length, paginated, validated
from core.artifacts import (
    ArtifactBodyParser,
    SpooledUpload,
    artifact_open,
    artifact_store,
    discard_request_spools,
    too_large_error,
)
from core.audit import audit_verify
from core.audit_checkpoints import audit_checkpoint_create, checkpoint_document
from core.audit_export import audit_export
from core.invitation_links import link_mail, link_url
from core.models import ApiToken, Membership
from core.roles import SCOPES, Role, default_token_scopes, scopes_for_role
from core.tokens import api_token_create, api_token_revoke
from core.workspaces import (
    invitation_answer,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    workspace_create,
    workspace_update,
)


class HealthView(APIView):
    """Liveness and database reachability; the only API route open to anonymous callers."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: inline_serializer("Health", {"status": serializers.CharField()}),
            503: OpenApiTypes.OBJECT,
        }
    )
    def get(self, request):
        # A database that cannot be reached is a 503 problem document (core/api/errors.py).
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Response({"status": "ok"})


class RoleListView(UserAPIView):
    """Each role a member can hold: every scope it allows (with what the scope permits) and the
    scopes a token gets when created without naming any. A fixed catalogue, answered whole."""

    pagination_class = None

    @extend_schema(
        responses=inline_serializer(
            "Roles",
            {
                "roles": inline_serializer(
                    "Role",
                    {
                        "role": serializers.CharField(),
                        "label": serializers.CharField(),
                        "scopes": serializers.DictField(child=serializers.CharField()),
                        "default_token_scopes": serializers.ListField(child=serializers.CharField()),
                    },
                    many=True,
                )
            },
        )
    )
    def get(self, request):
        roles = [
            {
                "role": role.value,
                "label": role.label,
                "scopes": {scope: SCOPES[scope] for scope in sorted(scopes_for_role(role))},
                "default_token_scopes": sorted(default_token_scopes(role)),
            }
            for role in Role
        ]
        return Response({"roles": roles})


class MeView(UserAPIView):
    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "memberships": s.MembershipOutput(many=True),
                "token": s.TokenOutput(allow_null=True),
            },
        )
    )
    def get(self, request):
        token = request.auth if isinstance(request.auth, ApiToken) else None
        memberships = selectors.membership_list_of_user(
            user=request.user, workspace_id=token.workspace_id if token else None
        )
        return Response(
            {
                "username": request.user.get_username(),
                "memberships": s.MembershipOutput(memberships, many=True).data,
                "token": s.TokenOutput(token).data if token else None,
            }
        )


class WorkspaceListView(UserAPIView):
    @extend_schema(responses=s.MembershipOutput(many=True))
    def get(self, request):
        token = request.auth if isinstance(request.auth, ApiToken) else None
        memberships = selectors.membership_list_of_user(
            user=request.user, workspace_id=token.workspace_id if token else None
        )
        return paginated(self, request, memberships, s.MembershipOutput)

    @extend_schema(request=s.WorkspaceCreateInput, responses={201: s.WorkspaceOutput})
    def post(self, request):
        if isinstance(request.auth, ApiToken):
            raise exceptions.PermissionDenied("API tokens cannot create workspaces; sign in instead")
        data = validated(s.WorkspaceCreateInput, request.data)
        workspace = workspace_create(slug=data["slug"], name=data["name"], actor=actor_from_request(request))
        return Response(s.WorkspaceOutput(workspace).data, status=status.HTTP_201_CREATED)


class WorkspaceDetailView(WorkspaceAPIView):
    required_scopes = {"GET": "workspace:read", "PATCH": "workspace:admin"}

    @extend_schema(responses=s.WorkspaceOutput)
    def get(self, request):
        return Response(s.WorkspaceOutput(self.access.workspace).data)

    @extend_schema(request=s.WorkspaceUpdateInput, responses=s.WorkspaceOutput)
    def patch(self, request):
        data = self.validated(s.WorkspaceUpdateInput, request.data)
        workspace = workspace_update(workspace=self.access.workspace, actor=self.access.actor, **data)
        return Response(s.WorkspaceOutput(workspace).data)


class MemberListView(WorkspaceAPIView):
    required_scopes = {"GET": "workspace:read", "POST": "workspace:admin"}

    @extend_schema(responses=s.MembershipOutput(many=True))
    def get(self, request):
        members = selectors.membership_list(workspace=self.access.workspace)
        return self.paginated(request, members, s.MembershipOutput)

    @extend_schema(
        request=s.MembershipCreateInput,
        responses={202: s.InvitationCreatedOutput},
        description="Invite a person by username or e-mail address: they become a member once they "
        "accept (signed in: GET /api/v1/invitations; without an account: through the one-time link "
        "in this answer, also e-mailed to the address given).",
    )
    def post(self, request):
        data = self.validated(s.MembershipCreateInput, request.data)
        invitation, secret = invitation_create(
            workspace=self.access.workspace, actor=self.access.actor, **data
        )
        link = link_url(secret, request.build_absolute_uri("/"))
        mailed = link_mail(invitation, link)
        output = s.InvitationCreatedOutput(invitation, context={"link": link, "mailed": mailed})
        return Response(output.data, status=status.HTTP_202_ACCEPTED)


class WorkspaceInvitationListView(WorkspaceAPIView):
    required_scopes = {"GET": "workspace:read"}

    @extend_schema(
        responses=s.InvitationOutput(many=True), description="The workspace's pending invitations."
    )
    def get(self, request):
        invitations = selectors.invitation_list_pending(workspace=self.access.workspace)
        return self.paginated(request, invitations, s.InvitationOutput)


class WorkspaceInvitationDetailView(WorkspaceAPIView):
    required_scopes = {"DELETE": "workspace:admin"}

    @extend_schema(responses=s.InvitationOutput, description="Withdraw a pending invitation.")
    def delete(self, request, invitation_id):
        invitation = invitation_revoke(
            workspace=self.access.workspace, actor=self.access.actor, invitation_id=invitation_id
        )
        return Response(s.InvitationOutput(invitation).data)


class MyInvitationListView(UserAPIView):
    @extend_schema(
        responses=s.InvitationOutput(many=True), description="Invitations waiting for your answer."
    )
    def get(self, request):
        if isinstance(request.auth, ApiToken):  # a token acts in its own workspace only
            raise exceptions.PermissionDenied("invitations are answered signed in, not with an API token")
        invitations = selectors.invitation_list_pending(user=request.user)
        return paginated(self, request, invitations, s.InvitationOutput)


class MyInvitationAnswerView(UserAPIView):
    accept = True

    @extend_schema(request=None, responses=s.InvitationOutput)
    def post(self, request, invitation_id):
        selectors.invitation_pending_get(user=request.user, invitation_id=invitation_id)
        if isinstance(request.auth, ApiToken):
            raise exceptions.PermissionDenied("invitations are answered signed in, not with an API token")
        invitation = invitation_answer(invitation_id=invitation_id, user=request.user, accept=self.accept)
        return Response(s.InvitationOutput(invitation).data)


class MemberDetailView(WorkspaceAPIView):
    required_scopes = {"GET": "workspace:read", "PATCH": "workspace:admin", "DELETE": "workspace:admin"}

    def get_membership(self, username: str) -> Membership:
        return selectors.membership_get(workspace=self.access.workspace, username=username)

    @extend_schema(responses=s.MembershipOutput)
    def get(self, request, username: str):
        return Response(s.MembershipOutput(self.get_membership(username)).data)

    @extend_schema(request=s.MembershipUpdateInput, responses=s.MembershipOutput)
    def patch(self, request, username: str):
        membership = self.get_membership(username)
        data = self.validated(s.MembershipUpdateInput, request.data)
        membership = membership_change_role(membership=membership, actor=self.access.actor, role=data["role"])
        return Response(s.MembershipOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request, username: str):
        membership_remove(membership=self.get_membership(username), actor=self.access.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokensMixin(WorkspaceAPIView):
    def tokens(self):
        return selectors.api_token_list(
            workspace=self.access.workspace, user=self.request.user, role=self.access.role
        )

    def token(self, token_id) -> ApiToken:
        return selectors.api_token_get(
            workspace=self.access.workspace, user=self.request.user, role=self.access.role, token_id=token_id
        )


class TokenListView(TokensMixin):
    required_scopes = {"GET": "token:manage", "POST": "token:manage"}

    @extend_schema(responses=s.TokenOutput(many=True))
    def get(self, request):
        return self.paginated(request, self.tokens(), s.TokenOutput)

    @extend_schema(request=s.TokenCreateInput, responses={201: s.TokenCreatedOutput})
    def post(self, request):
        data = self.validated(s.TokenCreateInput, request.data)
        owner = request.user
        if data.get("user") and data["user"] != request.user.get_username():
            if self.access.role != Role.ADMIN:  # before saying who is a member
                raise exceptions.PermissionDenied(
                    "only a workspace admin may create tokens for another member"
                )
            membership = selectors.membership_find(workspace=self.access.workspace, username=data["user"])
            if membership is None:
                raise exceptions.ValidationError(
                    {"user": [f"{data['user']!r} is not a member of this workspace"]}
                )
            owner = membership.user
        token, raw = api_token_create(
            workspace=self.access.workspace,
            actor=self.access.actor,
            user=owner,
            name=data["name"],
            scopes=data.get("scopes"),
            expires_in_days=data.get("expires_in_days"),
            # a token's own scopes (a session's are its role's): a token never mints a wider one
            caller_scopes=self.access.scopes,
        )
        body = s.TokenOutput(token).data
        body["token"] = raw
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailView(TokensMixin):
    required_scopes = {"GET": "token:manage", "DELETE": "token:manage"}

    @extend_schema(responses=s.TokenOutput)
    def get(self, request, token_id):
        return Response(s.TokenOutput(self.token(token_id)).data)

    @extend_schema(responses={204: None}, description="Revoke the token. Revoking twice changes nothing.")
    def delete(self, request, token_id):
        token = self.token(token_id)
        api_token_revoke(token=token, actor=self.access.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ArtifactListView(WorkspaceAPIView):
    required_scopes = {"GET": "artifact:read", "POST": "artifact:write"}
    parser_classes = [MultiPartParser, ArtifactBodyParser]

    @extend_schema(
        parameters=[s.ArtifactFilterInput],
        responses=s.ArtifactOutput(many=True),
    )
    def get(self, request):
        filters = self.validated(s.ArtifactFilterInput, request.query_params)
        return self.paginated(
            request, selectors.artifact_list(workspace=self.access.workspace, **filters), s.ArtifactOutput
        )

    @extend_schema(
        request={"multipart/form-data": OpenApiTypes.OBJECT, "application/octet-stream": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter("filename", str, description="file name for a raw body upload"),
            OpenApiParameter(
                "media_type", str, description="declared media type (checked against the bytes)"
            ),
        ],
        responses={201: s.ArtifactOutput, 200: s.ArtifactOutput},
        description=(
            "Upload a file as a multipart `file` part or as the raw request body. The SHA-256 is computed "
            "while the bytes stream in; identical bytes are stored once (200 with the existing artifact)."
        ),
    )
    def post(self, request):
        try:
            return self._post(request)
        finally:
            discard_request_spools(request)  # parts not consumed, whatever happened

    def _post(self, request):
        if declared_length(request) > request_limit():
            raise too_large_error()
        spool, filename, declared = self._upload(request)
        declared = request.query_params.get("media_type") or request.data.get("media_type") or declared
        artifact, created = artifact_store(
            workspace=self.access.workspace,
            actor=self.access.actor,
            spool=spool,
            filename=filename,
            declared_media_type=declared,
        )
        return Response(
            s.ArtifactOutput(artifact).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers={"Location": f"/api/v1/artifacts/{artifact.id}"},
        )

    @staticmethod
    def _upload(request):
        if "spool" in request.data:
            filename = request.query_params.get("filename", "")
            return request.data["spool"], filename, request.data.get("declared", "")
        upload = request.FILES.get("file")
        if not isinstance(upload, SpooledUpload):
            raise exceptions.ValidationError({"file": ["send the file as the multipart part 'file'"]})
        return upload.spool, upload.name or "", upload.content_type or ""


def request_limit() -> int:
    # Allow for multipart framing around the file itself.
    return settings.ARTIFACT_MAX_BYTES + 64 * 1024


class ArtifactDetailView(WorkspaceAPIView):
    required_scopes = {"GET": "artifact:read"}

    @extend_schema(responses=s.ArtifactOutput)
    def get(self, request, artifact_id):
        artifact = selectors.artifact_get(workspace=self.access.workspace, artifact_id=artifact_id)
        return Response(s.ArtifactOutput(artifact).data)


class ArtifactContentView(WorkspaceAPIView):
    required_scopes = {"GET": "artifact:read"}

    # The bytes as uploaded, with the media type detected from them (text/csv, application/zip, ...).
    @extend_schema(responses={(200, "*/*"): OpenApiTypes.BINARY})
    def get(self, request, artifact_id):
        artifact = selectors.artifact_get(workspace=self.access.workspace, artifact_id=artifact_id)
        response = FileResponse(
            artifact_open(artifact),
            as_attachment=True,
            filename=artifact.filename or artifact.sha256,
            content_type=artifact.media_type,
        )
        response["ETag"] = f'"{artifact.sha256}"'
        response["Digest"] = f"sha-256={artifact.sha256}"
        return response


class AuditEventListView(WorkspaceAPIView):
    required_scopes = {"GET": "audit:read"}

    @extend_schema(parameters=[s.AuditFilterInput], responses=s.AuditEventOutput(many=True))
    def get(self, request):
        filters = self.validated(s.AuditFilterInput, request.query_params)
        events = selectors.audit_event_list(workspace=self.access.workspace, **filters)
        return self.paginated(request, events, s.AuditEventOutput)


class AuditEventDetailView(WorkspaceAPIView):
    required_scopes = {"GET": "audit:read"}

    @extend_schema(responses=s.AuditEventOutput)
    def get(self, request, seq: int):
        event = selectors.audit_event_get(workspace=self.access.workspace, seq=seq)
        return Response(s.AuditEventOutput(event).data)


class AuditVerifyView(WorkspaceAPIView):
    required_scopes = {"GET": "audit:read"}

    @extend_schema(responses=s.ChainReportOutput)
    def get(self, request):
        return Response(audit_verify(workspace=self.access.workspace).as_dict())


class AuditChainView(WorkspaceAPIView):
    """The chain in sequence order, each event with the exact document its hash covers, for
    verifying it outside the service (`mlgov verify-audit`)."""

    required_scopes = {"GET": "audit:read"}

    @extend_schema(parameters=[s.ChainInput], responses=s.ChainOutput)
    def get(self, request):
        query = self.validated(s.ChainInput, request.query_params)
        return Response(selectors.audit_chain_page(workspace=self.access.workspace, **query))


class AuditExportView(WorkspaceAPIView):
    """The audit log of a period as a signed export, verifiable offline (`mlgov verify-audit-export`)."""

    required_scopes = {"GET": "audit:read"}

    @extend_schema(parameters=[s.AuditExportInput], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        period = self.validated(s.AuditExportInput, request.query_params)
        return Response(audit_export(workspace=self.access.workspace, **period))


class AuditCheckpointListView(WorkspaceAPIView):
    required_scopes = {"GET": "audit:read", "POST": "audit:read"}

    @extend_schema(responses=s.CheckpointOutput(many=True))
    def get(self, request):
        checkpoints = selectors.audit_checkpoint_list(workspace=self.access.workspace)
        return self.paginated(request, checkpoints, _CheckpointDocument)

    @extend_schema(
        request=None,
        responses={201: s.CheckpointOutput, 200: s.CheckpointOutput},
        description="Sign the chain's current head (200 with the existing checkpoint when it has one).",
    )
    def post(self, request):
        checkpoint, created = audit_checkpoint_create(workspace=self.access.workspace)
        return Response(
            checkpoint_document(checkpoint), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class _CheckpointDocument(serializers.BaseSerializer):
    def to_representation(self, instance):
        return checkpoint_document(instance)
