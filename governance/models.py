"""The model registry, datasheets, policies, signed gate decisions and promotion requests."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.models import Artifact, Workspace
from core.work import Work
from lineage.models import Node


class Stage(models.TextChoices):
    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


# Which stage may follow which (MLflow's lifecycle; archived versions can come back to staging).
TRANSITIONS = {
    Stage.NONE: {Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED},
    Stage.STAGING: {Stage.PRODUCTION, Stage.ARCHIVED},
    Stage.PRODUCTION: {Stage.ARCHIVED, Stage.STAGING},
    Stage.ARCHIVED: {Stage.STAGING},
}


class RiskTier(models.TextChoices):
    """Risk tiers in the EU AI Act's terms; policies can select the models they govern by tier."""

    MINIMAL = "minimal"
    LIMITED = "limited"
    HIGH = "high"
    PROHIBITED = "prohibited"


class AnnexIIIArea(models.TextChoices):
    """The areas of the EU AI Act's Annex III, which make a system in them high-risk (points 1-8)."""

    BIOMETRICS = "biometrics", "Biometrics"
    CRITICAL_INFRASTRUCTURE = "critical-infrastructure", "Critical infrastructure"
    EDUCATION = "education", "Education and vocational training"
    EMPLOYMENT = "employment", "Employment, workers' management and access to self-employment"
    ESSENTIAL_SERVICES = (
        "essential-services",
        "Access to essential private services and essential public services and benefits",
    )
    LAW_ENFORCEMENT = "law-enforcement", "Law enforcement"
    MIGRATION = "migration", "Migration, asylum and border control management"
    JUSTICE = "justice", "Administration of justice and democratic processes"


class RegisteredModel(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="registered_models")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # What policies select models by (`applies_to`): free-form tags and the risk tier (blank: not set).
    tags = models.JSONField(default=list, blank=True)
    risk_tier = models.CharField(max_length=20, choices=RiskTier.choices, blank=True)
    # The risk classification beside the tier: for a high-risk model, the Annex III area that makes
    # it so (blank: not set, or high-risk for another reason); what it is for; who answers for it.
    annex_iii_area = models.CharField(max_length=40, choices=AnnexIIIArea.choices, blank=True)
    intended_purpose = models.TextField(blank=True)
    owner = models.CharField(max_length=200, blank=True)
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="registered_model_unique")]

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=100)
    node = models.OneToOneField(Node, on_delete=models.PROTECT, related_name="registry_version")
    artifact = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="+")
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NONE)
    metrics = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    stage_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["registered_model__name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["registered_model", "version"], name="model_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.registered_model.name}@{self.version}"


class Alias(models.Model):
    registered_model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=100)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registered_model", "name"], name="alias_unique")]

    def __str__(self) -> str:
        return f"{self.registered_model.name}@{self.name}"


class DatasheetKind(models.TextChoices):
    MODEL_CARD = "model_card"
    DATASET = "datasheet"
    # A model version's EU AI Act technical documentation, the parts only people can write (Annex IV).
    ANNEX_IV = "annex_iv"


class Datasheet(models.Model):
    """One version of a model card or a dataset datasheet (a new row per edit)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="datasheets")
    kind = models.CharField(max_length=20, choices=DatasheetKind.choices)
    subject = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="+")
    revision = models.IntegerField()
    content = models.JSONField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-revision"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "kind", "revision"], name="datasheet_revision_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.subject.key} r{self.revision}"


class Policy(models.Model):
    """One version of a policy document; the latest active version of each name applies."""

    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="policies")
    name = models.CharField(max_length=100)
    revision = models.IntegerField()
    stages = models.JSONField()
    document = models.JSONField()
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name", "revision"], name="policy_revision_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} r{self.revision}"


class GateDecision(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="gate_decisions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="gate_decisions")
    stage = models.CharField(max_length=20, choices=Stage.choices)
    passed = models.BooleanField()
    statement = models.JSONField()  # exactly what was signed (canonical JSON of it)
    signature = models.CharField(max_length=200)
    key_id = models.CharField(max_length=64)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["model_version", "stage", "created_at"])]

    def __str__(self) -> str:
        return f"gate {self.stage} for {self.model_version}: {'pass' if self.passed else 'fail'}"


class RequestState(models.TextChoices):
    OPEN = "open"
    COMPLETED = "completed"  # the stage changed
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class PromotionRequest(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="promotion_requests")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="promotion_requests"
    )
    stage = models.CharField(max_length=20, choices=Stage.choices)
    state = models.CharField(max_length=20, choices=RequestState.choices, default=RequestState.OPEN)
    comment = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    decision = models.ForeignKey(
        GateDecision, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.model_version} -> {self.stage} ({self.state})"


class Review(models.Model):
    request = models.ForeignKey(PromotionRequest, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=40)
    approve = models.BooleanField()
    comment = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["request", "reviewer"], name="review_once")]

    def __str__(self) -> str:
        return f"{'approve' if self.approve else 'reject'} by {self.reviewer_id}"


class Report(Work):
    """A lineage-and-audit report of a model version, rendered by a worker (JSON bundle, HTML, PDF):
    background work whose task is `governance.render_report`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="reports")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="reports")
    bundle = models.ForeignKey(Artifact, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    html = models.ForeignKey(Artifact, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    pdf = models.ForeignKey(Artifact, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"report of {self.model_version} ({self.state})"

    work_task = "governance.render_report"

    @property
    def work_kind(self) -> str:
        return "report"

    @property
    def work_target(self) -> str:
        return f"model:{self.model_version}"


class TechfileApproval(models.Model):
    """An approval of a version's technical file (governance/techfile_approvals.py): signed by the
    service, for the evidence the file cited then (`evidence_digest`). A later file carries it, marked
    current while its evidence is the same."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="+")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="techfile_approvals"
    )
    evidence_digest = models.CharField(max_length=64)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=32)
    comment = models.TextField(blank=True)
    approved_at = models.DateTimeField(default=timezone.now)
    statement = models.JSONField()
    signature = models.TextField()

    class Meta:
        ordering = ["approved_at"]

    def __str__(self) -> str:
        return f"technical file of {self.model_version} approved by {self.approved_by}"
