from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from lineage.kinds import NODE_KINDS
from lineage.models import Node


class NodeOutput(serializers.ModelSerializer):
    artifact = serializers.UUIDField(source="artifact_id", allow_null=True)
    # Node.properties is JSON kept as text in the database: served as the object it holds.
    properties = serializers.JSONField(read_only=True)

    class Meta:
        model = Node
        fields = ["id", "kind", "key", "name", "properties", "artifact", "created_at", "updated_at"]


class NodeFilterInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(NODE_KINDS), required=False)
    key = serializers.CharField(required=False, help_text="exact key")
    q = serializers.CharField(required=False, help_text="part of the key or name")


class KindsField(serializers.CharField):
    """A comma-separated list of node kinds."""

    def to_internal_value(self, data):
        kinds = [k.strip() for k in str(super().to_internal_value(data)).split(",") if k.strip()]
        unknown = [k for k in kinds if k not in NODE_KINDS]
        if unknown:
            raise serializers.ValidationError(f"unknown kind(s): {', '.join(unknown)}")
        return kinds


class WalkInput(serializers.Serializer):
    depth = serializers.IntegerField(min_value=1, required=False, default=10)
    kinds = KindsField(required=False, help_text="comma-separated node kinds to keep in the answer")

    def validate_depth(self, value: int) -> int:
        if value > settings.LINEAGE_MAX_DEPTH:
            raise serializers.ValidationError(
                f"must be at most {settings.LINEAGE_MAX_DEPTH} (LINEAGE_MAX_DEPTH)"
            )
        return value


class ImpactInput(serializers.Serializer):
    depth = serializers.IntegerField(min_value=1, required=False, help_text="default: LINEAGE_MAX_DEPTH")

    def validate_depth(self, value: int) -> int:
        return WalkInput().validate_depth(value)


class PathInput(serializers.Serializer):
    source = serializers.IntegerField(help_text="node id the path starts at")
    target = serializers.IntegerField(help_text="node id the path ends at")
    max_depth = serializers.IntegerField(min_value=1, max_value=50, required=False, default=20)


class GraphNodeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    key = serializers.CharField()
    name = serializers.CharField()
    properties = serializers.DictField()
    depth = serializers.IntegerField(allow_null=True)


class GraphEdgeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    src = serializers.IntegerField()
    dst = serializers.IntegerField()


class SubgraphOutput(serializers.Serializer):
    root = serializers.IntegerField(allow_null=True)
    store = serializers.CharField()
    nodes = GraphNodeOutput(many=True)
    edges = GraphEdgeOutput(many=True)
    truncated = serializers.BooleanField()


class RecordOutput(serializers.Serializer):
    nodes_created = serializers.IntegerField()
    nodes_updated = serializers.IntegerField()
    edges_created = serializers.IntegerField()
    edges_updated = serializers.IntegerField()
