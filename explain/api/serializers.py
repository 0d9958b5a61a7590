from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from core.api.fields import NumberField
from core.api.serializers import WORK_FIELDS
from explain.models import Job, JobKind, JobState


def _columns(**kwargs):
    return serializers.ListField(
        child=serializers.CharField(max_length=200), allow_empty=False, max_length=2000, **kwargs
    )


class JobInput(serializers.Serializer):
    dataset_version = serializers.CharField(
        max_length=500, help_text="key of a DatasetVersion node with data"
    )
    features = _columns(
        required=False, help_text="feature columns in the model's order (default: the model's feature names)"
    )
    target = serializers.CharField(max_length=200, required=False)
    seed = serializers.IntegerField(min_value=0, max_value=2**31, default=0)

    def validate_features(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("a feature is named twice")
        return value


class ExplanationInput(JobInput):
    backend = serializers.ChoiceField(choices=["auto", "gpu", "cpu"], default="auto")
    rows = serializers.IntegerField(min_value=1, required=False, help_text="explain a seeded sample of rows")
    background_rows = serializers.IntegerField(min_value=1, max_value=5000, default=100)
    chunk_rows = serializers.IntegerField(min_value=10, required=False, help_text="rows per chunk task")
    output = serializers.IntegerField(min_value=0, required=False, help_text="output (class) the plots show")

    def validate_rows(self, value: int) -> int:
        if value > settings.EXPLAIN_MAX_ROWS:
            raise serializers.ValidationError(f"at most {settings.EXPLAIN_MAX_ROWS} rows (EXPLAIN_MAX_ROWS)")
        return value


class FairnessInput(JobInput):
    target = serializers.CharField(max_length=200)
    sensitive_features = _columns(help_text="one or more columns; several give intersectional groups")
    positive_label = serializers.JSONField(required=False, default=1)
    resamples = serializers.IntegerField(min_value=0, max_value=5000, default=200)
    confidence_level = NumberField(min_value=0.5, max_value=0.999, default=0.95)
    min_group_size = serializers.IntegerField(
        min_value=1,
        default=30,
        help_text="groups with fewer rows are left out of the disparities (and listed)",
    )
    reference_group = serializers.JSONField(
        required=False,
        help_text="the group the others are compared with: a value for each sensitive feature "
        '({"sex": "Male"}) or a group\'s label; default: the largest group',
    )
    weight_column = serializers.CharField(
        max_length=200, required=False, help_text="a numeric column of non-negative sample weights"
    )

    def validate_reference_group(self, value):
        if isinstance(value, str) and value:
            return value
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in value.items())
        ):
            return value
        raise serializers.ValidationError(
            'must be a value for each sensitive feature ({"sex": "Male"}) or a group label ("sex=Male")'
        )

    def validate(self, attrs):
        reference = attrs.get("reference_group")
        if isinstance(reference, dict) and set(reference) != set(attrs.get("sensitive_features", [])):
            raise serializers.ValidationError(
                {"reference_group": "give a value for each sensitive feature, and no other column"}
            )
        return super().validate(attrs)

    def validate_sensitive_features(self, value):
        if len(value) > 4:
            raise serializers.ValidationError("at most 4 sensitive features")
        return value

    def validate_positive_label(self, value):
        if not isinstance(value, (str, int, float, bool)):
            raise serializers.ValidationError("must be a label value (string, number or boolean)")
        return value


class JobOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    dataset = serializers.SerializerMethodField()
    result_artifact = serializers.UUIDField(source="result_artifact_id", allow_null=True)
    result_node = serializers.IntegerField(source="result_node_id", allow_null=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "url",
            "kind",
            *WORK_FIELDS,
            "backend",
            "backend_detail",
            "model",
            "dataset",
            "params",
            "queue",
            "chunks_total",
            "chunks_done",
            "timings",
            "result",
            "result_artifact",
            "result_node",
        ]

    def get_url(self, job: Job) -> str:
        return reverse("job-detail", kwargs={"job_id": job.id})

    def get_model(self, job: Job) -> dict:
        return {"node": job.model_node_id, "key": job.model_node.key, "artifact": str(job.model_artifact_id)}

    def get_dataset(self, job: Job) -> dict:
        return {
            "node": job.dataset_node_id,
            "key": job.dataset_node.key,
            "artifact": str(job.dataset_artifact_id),
        }


class JobFilterInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=JobKind.values, required=False)
    state = serializers.ChoiceField(choices=JobState.values, required=False)
