from __future__ import annotations

from rest_framework import serializers

from core.api.fields import NumberField
from core.api.serializers import WORK_FIELDS
from privacy.mechanisms import MECHANISMS, STATISTICS
from privacy.models import PrivacyBudget, PrivacyRelease


class BudgetInput(serializers.Serializer):
    epsilon = NumberField(min_value=0.0, max_value=1000.0)
    delta = NumberField(min_value=0.0, max_value=0.01, default=0.0)


class BudgetOutput(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset_node.key")
    epsilon_left = serializers.FloatField()
    delta_left = serializers.FloatField()

    class Meta:
        model = PrivacyBudget
        fields = [
            "dataset",
            "epsilon_total",
            "delta_total",
            "epsilon_spent",
            "delta_spent",
            "epsilon_left",
            "delta_left",
            "updated_at",
        ]


class BoundsField(serializers.ListField):
    child = NumberField()

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) != 2 or not value[0] < value[1]:
            raise serializers.ValidationError("must be [lower, upper] with lower < upper")
        return value


class ReleaseInput(serializers.Serializer):
    statistic = serializers.ChoiceField(choices=STATISTICS)
    column = serializers.CharField(max_length=200, required=False)
    mechanism = serializers.ChoiceField(choices=MECHANISMS, default="laplace")
    epsilon = NumberField()
    delta = NumberField(required=False, min_value=0.0)
    bounds = BoundsField(required=False, help_text="[lower, upper]; default: the dataset's metadata")
    categories = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, allow_empty=False, max_length=1000
    )
    q = NumberField(required=False, help_text="quantile in (0, 1)")
    group_by = serializers.CharField(max_length=200, required=False)

    def validate_epsilon(self, value: float) -> float:
        if not value > 0:
            raise serializers.ValidationError("must be a positive number")
        if value > 100:
            raise serializers.ValidationError("must be at most 100")
        return value

    def validate(self, attrs):
        mechanism, delta = attrs.get("mechanism", "laplace"), attrs.get("delta")
        if mechanism == "gaussian" and not delta:
            raise serializers.ValidationError({"delta": "the Gaussian mechanism needs a delta > 0"})
        if mechanism == "laplace" and delta:
            raise serializers.ValidationError({"delta": "the Laplace mechanism is pure DP: leave delta out"})
        if attrs["statistic"] == "quantile":
            q = attrs.get("q")
            if q is None or not 0 < q < 1:
                raise serializers.ValidationError({"q": "a quantile needs q strictly between 0 and 1"})
        elif "q" in attrs:
            raise serializers.ValidationError({"q": "only quantiles take q"})
        return attrs


class SummaryInput(serializers.Serializer):
    epsilon = NumberField(min_value=1e-6, max_value=100.0)
    mechanism = serializers.ChoiceField(choices=["laplace"], default="laplace")
    consistent = serializers.BooleanField(
        default=False,
        help_text="Show each histogram adjusted to add up to the summary's count (post-processing: no "
        "privacy cost; the releases themselves are kept as released).",
    )


class ReleaseOutput(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset_node.key")
    node = serializers.IntegerField(source="node_id", allow_null=True)
    noise_scale = serializers.FloatField(source="scale", allow_null=True)

    class Meta:
        model = PrivacyRelease
        fields = [
            "id",
            "dataset",
            *WORK_FIELDS,
            "query",
            "value",
            "raw_value",
            "mechanism",
            "epsilon",
            "delta",
            "noise_scale",
            "accuracy",
            "node",
        ]
