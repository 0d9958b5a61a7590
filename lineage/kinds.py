"""The closed vocabulary of the lineage graph: node kinds, edge kinds, and which way each edge
points along the dependency ("provenance") direction.

These lists are also the allow-list for graph-database labels and relationship types: nothing from a
request is ever spliced into Cypher unless it is one of these names.
"""

from __future__ import annotations

from django.db import models


class NodeKind(models.TextChoices):
    DATASET = "Dataset"
    DATASET_VERSION = "DatasetVersion"
    COMMIT = "Commit"
    ENVIRONMENT = "Environment"
    JOB = "Job"
    RUN = "Run"
    MODEL = "Model"
    MODEL_VERSION = "ModelVersion"
    DEPLOYMENT = "Deployment"
    EXPLANATION = "Explanation"
    FAIRNESS_ASSESSMENT = "FairnessAssessment"
    PRIVACY_RELEASE = "PrivacyRelease"
    REPORT = "Report"


class EdgeKind(models.TextChoices):
    USED = "USED"  # Run -> DatasetVersion it read
    PRODUCED = "PRODUCED"  # Run -> what it wrote (DatasetVersion, ModelVersion, ...)
    VERSION_OF = "VERSION_OF"  # DatasetVersion -> Dataset, ModelVersion -> Model
    BUILT_FROM = "BUILT_FROM"  # Run -> Commit
    RAN_IN = "RAN_IN"  # Run -> Environment
    INSTANCE_OF = "INSTANCE_OF"  # Run -> Job
    TRAINED_ON = "TRAINED_ON"  # ModelVersion -> DatasetVersion
    EVALUATED_ON = "EVALUATED_ON"  # Explanation / FairnessAssessment -> DatasetVersion
    ASSESSES = "ASSESSES"  # Explanation / FairnessAssessment / Report -> ModelVersion
    DEPLOYED_AS = "DEPLOYED_AS"  # ModelVersion -> Deployment
    DERIVED_FROM = "DERIVED_FROM"  # anything -> what it was derived from


# Edge kinds whose source is what the target depends on (the target is downstream of the source).
# For every other kind, the source depends on the target.
SOURCE_IS_UPSTREAM = frozenset({EdgeKind.PRODUCED, EdgeKind.DEPLOYED_AS})

NODE_KINDS = frozenset(NodeKind.values)
EDGE_KINDS = frozenset(EdgeKind.values)

# What `impact` reports: the things that would have to be revisited if a node changed.
IMPACT_KINDS = frozenset({NodeKind.MODEL_VERSION, NodeKind.DEPLOYMENT})


def dependency_ends(kind: str, src: int, dst: int) -> tuple[int, int]:
    """(upstream, downstream) ends of an edge of `kind` from `src` to `dst`."""
    return (src, dst) if kind in SOURCE_IS_UPSTREAM else (dst, src)
