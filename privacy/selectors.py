"""Reads of the privacy app: a dataset version's node, its budget, its releases and its latest DP
summary. Nothing here spends: every value read is one already released."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import QuerySet

from core.errors import NotFound
from core.models import Workspace
from core.work import WorkState
from lineage.kinds import NodeKind
from lineage.models import Node
from lineage.selectors import version_node
from privacy import mechanisms
from privacy.models import PrivacyBudget, PrivacyRelease


def dataset_version_node(workspace: Workspace, name: str, version: str) -> Node:
    """The DatasetVersion lineage node `<name>@<version>`; 404 if the workspace has none."""
    return version_node(workspace=workspace, kind=NodeKind.DATASET_VERSION, name=name, version=version)


def privacy_budget_get(*, node: Node) -> PrivacyBudget:
    """The dataset version's budget; 404 when none is set."""
    budget = PrivacyBudget.objects.filter(dataset_node=node).first()
    if budget is None:
        raise NotFound(f"no privacy budget is set for {node.key}")
    return budget


def release_list(*, node: Node) -> QuerySet[PrivacyRelease]:
    """The dataset version's releases, newest first, with their dataset node."""
    return PrivacyRelease.objects.filter(dataset_node=node).select_related("dataset_node")


def latest_summary(node: Node) -> dict[str, Any] | None:
    """The dataset's most recent DP summary (the releases of one summary request), for the
    datasheet's composition section. A histogram asked to be consistent is shown adjusted to add up
    to the summary's count (`value`; what was released, clamped, stays in `released_value`)."""
    releases = PrivacyRelease.objects.filter(
        dataset_node=node, state=WorkState.SUCCEEDED, query__purpose="summary"
    ).order_by("created_at")
    newest = releases.last()
    if newest is None:
        return None
    if newest.query.get("summary"):
        releases = releases.filter(query__summary=newest.query["summary"])
    releases = list(releases)
    statistics = [
        {
            "statistic": r.query["statistic"],
            "column": r.query.get("column"),
            "value": r.value,
            "accuracy": r.accuracy,
        }
        for r in releases
    ]
    count = next((s["value"] for s in statistics if s["statistic"] == "count"), None)
    for statistic, release in zip(statistics, releases, strict=True):
        adjust = release.query.get("consistent_total") and count is not None
        if adjust and isinstance(statistic["value"], dict):
            statistic["released_value"] = statistic["value"]
            statistic["value"] = mechanisms.consistent_counts(statistic["value"], count)
            statistic["adjusted_to_count"] = True
    return {"epsilon": math.fsum(r.epsilon for r in releases), "statistics": statistics}
