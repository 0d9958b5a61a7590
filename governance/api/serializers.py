from __future__ import annotations

import json

from rest_framework import serializers

from core.api.fields import NumberField
from core.api.serializers import WORK_FIELDS
from governance.models import (
    AnnexIIIArea,
    GateDecision,
    ModelVersion,
    Policy,
    PromotionRequest,
    RegisteredModel,
    Report,
    RiskTier,
    Stage,
)
from governance.names import NAME_PATTERN


class RefInput(serializers.Serializer):
    key = serializers.CharField(max_length=500)
    properties = serializers.DictField(required=False)

    def validate_properties(self, value):
        try:
            json.dumps(value, allow_nan=False)
        except ValueError:
            raise serializers.ValidationError("numbers must be finite (no NaN or Infinity)") from None
        return value


class RunInput(RefInput):
    job = serializers.CharField(max_length=500, required=False)


class RegisterInput(serializers.Serializer):
    version = serializers.RegexField(NAME_PATTERN, max_length=100)
    artifact = serializers.UUIDField(help_text="the model file (skops), uploaded as an artifact")
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    metrics = serializers.DictField(child=NumberField(), required=False)
    run = RunInput(required=False)
    datasets = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, max_length=100
    )
    commit = RefInput(required=False)
    environment = RefInput(required=False)


class VersionOutput(serializers.ModelSerializer):
    model = serializers.CharField(source="registered_model.name")
    node = serializers.IntegerField(source="node_id")
    artifact = serializers.UUIDField(source="artifact_id")
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    aliases = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "model",
            "version",
            "stage",
            "node",
            "artifact",
            "metrics",
            "description",
            "author",
            "aliases",
            "created_at",
            "stage_changed_at",
        ]

    def get_aliases(self, version: ModelVersion) -> list[str]:
        return sorted(a.name for a in version.aliases.all())


class ModelOutput(serializers.ModelSerializer):
    versions = VersionOutput(many=True)

    class Meta:
        model = RegisteredModel
        fields = [
            "name",
            "description",
            "tags",
            "risk_tier",
            "annex_iii_area",
            "intended_purpose",
            "owner",
            "created_at",
            "versions",
        ]


class ModelUpdateInput(serializers.Serializer):
    """What selects the policies that govern a model (`applies_to`), and its description."""

    tags = serializers.ListField(
        child=serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"), max_length=50, required=False
    )
    risk_tier = serializers.ChoiceField(choices=RiskTier.choices, required=False)
    annex_iii_area = serializers.ChoiceField(
        choices=AnnexIIIArea.choices,
        required=False,
        allow_blank=True,
        help_text="for a high-risk model, the EU AI Act Annex III area that makes it so; blank clears it",
    )
    intended_purpose = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    owner = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="the person or team who answers for it"
    )
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class AliasInput(serializers.Serializer):
    version = serializers.CharField(max_length=100)


class DatasheetInput(serializers.Serializer):
    content = serializers.JSONField(required=False)
    document = serializers.CharField(
        required=False, max_length=1_000_000, help_text="YAML, JSON or Markdown text"
    )
    format = serializers.ChoiceField(choices=["json", "yaml", "markdown"], required=False, default="yaml")

    def validate(self, attrs):
        if ("content" in attrs) == ("document" in attrs):
            raise serializers.ValidationError(
                {"content": "give either `content` (JSON) or `document` (text)"}
            )
        return attrs


class PolicyInput(serializers.Serializer):
    document = serializers.JSONField(required=False, help_text="the policy as JSON")
    text = serializers.CharField(
        required=False, max_length=500_000, help_text="the policy as YAML or JSON text"
    )

    def validate(self, attrs):
        if ("document" in attrs) == ("text" in attrs):
            raise serializers.ValidationError({"document": "give either `document` (JSON) or `text` (YAML)"})
        return attrs


class PolicyOutput(serializers.ModelSerializer):
    class Meta:
        model = Policy
        fields = ["name", "revision", "stages", "active", "document", "created_at"]


class GateInput(serializers.Serializer):
    stage = serializers.ChoiceField(choices=[Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED])


class DecisionOutput(serializers.ModelSerializer):
    algorithm = serializers.SerializerMethodField()

    class Meta:
        model = GateDecision
        fields = ["id", "stage", "passed", "statement", "signature", "key_id", "algorithm", "created_at"]

    def get_algorithm(self, decision) -> str:
        return "Ed25519"


class PromotionInput(serializers.Serializer):
    stage = serializers.ChoiceField(choices=[Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED])
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class ReviewInput(serializers.Serializer):
    comment = serializers.CharField(max_length=5000)


class RequestOutput(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.registered_model.name")
    version = serializers.CharField(source="model_version.version")
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None)
    reviews = serializers.SerializerMethodField()
    decision = serializers.UUIDField(source="decision_id", allow_null=True)

    class Meta:
        model = PromotionRequest
        fields = [
            "id",
            "model",
            "version",
            "stage",
            "state",
            "comment",
            "requested_by",
            "reviews",
            "decision",
            "created_at",
            "closed_at",
        ]

    def get_reviews(self, request: PromotionRequest) -> list[dict]:
        # The lists prefetch every request's reviews with their reviewers in one query (the selectors'
        # Prefetch); a request answered on its own (just made or just reviewed) reads them here.
        prefetched = "reviews" in getattr(request, "_prefetched_objects_cache", {})
        reviews = request.reviews.all() if prefetched else request.reviews.select_related("reviewer")
        return [
            {
                "reviewer": r.reviewer.get_username(),
                "approve": r.approve,
                "comment": r.comment,
                "created_at": r.created_at,
            }
            for r in reviews
        ]


class RequestFilterInput(serializers.Serializer):
    state = serializers.ChoiceField(choices=["open", "completed", "rejected", "cancelled"], required=False)


class ReportOutput(serializers.ModelSerializer):
    model = serializers.CharField(source="model_version.registered_model.name")
    version = serializers.CharField(source="model_version.version")
    bundle = serializers.UUIDField(source="bundle_id", allow_null=True)
    html = serializers.UUIDField(source="html_id", allow_null=True)
    pdf = serializers.UUIDField(source="pdf_id", allow_null=True)

    class Meta:
        model = Report
        fields = [
            "id",
            "model",
            "version",
            *WORK_FIELDS,
            "bundle",
            "html",
            "pdf",
        ]


class TechfileApprovalInput(serializers.Serializer):
    comment = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
