"""Privacy budgets and differentially private releases.

A release spends from its dataset version's budget atomically: the budget row is locked
(SELECT ... FOR UPDATE on PostgreSQL; SQLite's write transactions are serialised by BEGIN IMMEDIATE),
the remaining budget is checked, and the release is recorded and the spend written in the same
transaction. A query asked before returns the stored answer and spends nothing. Small releases are
computed inside that transaction; large ones reserve their budget there and are computed by a worker,
which gives the budget back if the computation fails.

A request is checked and completed from the dataset's public privacy metadata before anything is
spent (privacy/queries.py).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import tables as loading
from core.actors import SYSTEM, Actor
from core.audit import audit_append
from core.canonical_json import canonical_bytes
from core.errors import ApplicationError, Conflict
from core.models import Workspace
from core.work import WorkState, work_dispatch, work_progress, work_start
from lineage.kinds import EdgeKind, NodeKind
from lineage.models import Node
from lineage.services import lineage_record
from lineage.specs import Batch, NodeSpec
from privacy import mechanisms
from privacy.models import PrivacyBudget, PrivacyRelease
from privacy.queries import (
    PRESENTATION_KEYS,
    dataset_frame,
    input_distance,
    metadata,
    normalise_query,
    query_hash,
)

# Reads that callers outside these apps (demo/, governance/) still ask for here; privacy/selectors.py
# holds them.
from privacy.selectors import dataset_version_node as dataset_version_node
from privacy.selectors import latest_summary as latest_summary

logger = logging.getLogger(__name__)


class BudgetExceeded(Conflict):
    title = "Privacy budget exceeded"


# --- budgets ------------------------------------------------------------------------------------------


@transaction.atomic
def budget_set(
    *, workspace: Workspace, actor: Actor, node: Node, epsilon: float, delta: float
) -> PrivacyBudget:
    budget = PrivacyBudget.objects.select_for_update().filter(dataset_node=node).first()
    if budget is not None and (epsilon < budget.epsilon_spent or delta < budget.delta_spent):
        raise ApplicationError(
            f"the budget cannot go below what is already spent (epsilon {budget.epsilon_spent:g}, "
            f"delta {budget.delta_spent:g})",
            field="epsilon" if epsilon < budget.epsilon_spent else "delta",
        )
    before = None if budget is None else {"epsilon": budget.epsilon_total, "delta": budget.delta_total}
    if budget is None:
        budget = PrivacyBudget(workspace=workspace, dataset_node=node)
    budget.epsilon_total, budget.delta_total, budget.updated_at = epsilon, delta, timezone.now()
    budget.save()
    audit_append(
        workspace=workspace,
        actor=actor,
        action="privacy.budget_set",
        target=f"dataset:{node.key}",
        payload={"epsilon": epsilon, "delta": delta, "before": before},
    )
    return budget


# --- computing a release -----------------------------------------------------------------------------


def _column(frame: pd.DataFrame, query: dict[str, Any]) -> list:
    """The values OpenDP reads, as a list (its input format)."""
    if query["statistic"] == "count":
        return [0.0] * len(frame)
    series = frame[query["column"]]
    if query["statistic"] == "histogram":
        return series.astype(str).tolist()
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    return values[
        ~np.isnan(values)
    ].tolist()  # rows with missing values are left out (a stable transformation)


@functools.lru_cache(maxsize=8)
def _whole_column(artifact_id: str, kind: str, column: str | None) -> list:
    """A whole column converted once per process (datasets are immutable: content-addressed)."""
    frame = loading.cached_table(artifact_id)
    return _column(frame, {"statistic": kind, "column": column})


def _values(node: Node, frame: pd.DataFrame, query: dict[str, Any]) -> list:
    kind = query["statistic"] if query["statistic"] in ("count", "histogram") else "sum"
    return _whole_column(str(node.artifact_id), kind, query.get("column"))


def _compute_checked(node: Node, query: dict[str, Any]) -> dict[str, Any]:
    """`compute`, with what OpenDP refuses (e.g. bounds so wide a sum overflows) as a 400."""
    from opendp.mod import OpenDPException  # noqa: PLC0415 - 0.7 s to import: loaded by the first release

    try:
        return compute(node, query)
    except OpenDPException as error:
        reason = (getattr(error, "message", None) or str(error)).strip().splitlines()[0][:300]
        raise ApplicationError(f"OpenDP cannot make this release: {reason}", field="query") from error


def compute(node: Node, query: dict[str, Any]) -> dict[str, Any]:
    """Run the release (on the whole column or per public group) and describe it."""
    frame = dataset_frame(node)
    meta = metadata(node)
    rows = meta.get("public_rows")
    unit = input_distance(query)
    if query.get("group_by"):
        keys = frame[query["group_by"]].astype(str)
        values, scale, epsilon, delta, accuracy = {}, None, 0.0, 0.0, None
        for category in query["group_categories"]:
            part = _column(frame[keys == category], query)  # per group: not cached
            released = mechanisms.release(query, part, unit, rows)
            values[category] = released.value
            scale, epsilon, delta, accuracy = (
                released.scale,
                released.epsilon,
                released.delta,
                released.accuracy,
            )
        return {"value": values, "scale": scale, "epsilon": epsilon, "delta": delta, "accuracy": accuracy}
    released = mechanisms.release(query, _values(node, frame, query), unit, rows)
    return {
        "value": released.value,
        "scale": released.scale,
        "epsilon": released.epsilon,
        "delta": released.delta,
        "accuracy": released.accuracy,
    }


# --- releases -----------------------------------------------------------------------------------------


def release_request(
    *, workspace: Workspace, actor: Actor, node: Node, request: dict[str, Any], on_worker: bool = False
) -> tuple[PrivacyRelease, str]:
    """Make (or recall) a release. Returns (release, outcome) with outcome "released", "repeated"
    or "queued". Raises BudgetExceeded (409) with the remaining budget when it does not fit.
    Datasets past PRIVACY_INLINE_MAX_ROWS (or any, with `on_worker`) are computed by a worker."""
    query = normalise_query(node, request)
    digest = query_hash(query)
    inline = not on_worker and len(dataset_frame(node)) <= settings.PRIVACY_INLINE_MAX_ROWS
    if (
        inline
        and not PrivacyRelease.objects.filter(
            dataset_node=node, query_hash=digest, state=WorkState.SUCCEEDED
        ).exists()
    ):
        # Computed before the budget is locked, so concurrent requests do not queue behind each
        # other's computation. A value computed for a request that is then refused is discarded
        # unseen: only what is returned (and stored) counts as released.
        outcome = _compute_checked(node, query)
    refusal = None
    with transaction.atomic():
        budget = PrivacyBudget.objects.select_for_update().filter(dataset_node=node).first()
        previous = PrivacyRelease.objects.filter(dataset_node=node, query_hash=digest).first()
        if previous is not None and previous.state != WorkState.FAILED:
            return previous, "repeated"
        epsilon, delta = float(query["epsilon"]), float(query.get("delta") or 0.0)
        refusal = _refusal(budget, epsilon, delta)
        if refusal is None:
            assert budget is not None  # noqa: S101 (checked by _refusal)
            if previous is not None:
                previous.delete()  # a failed attempt spent nothing; try again
            release = PrivacyRelease.objects.create(
                workspace=workspace,
                dataset_node=node,
                query_hash=digest,
                query=query,
                mechanism=query["mechanism"],
                epsilon=epsilon,
                delta=delta,
                created_by=actor.user,
            )
            budget.epsilon_spent += epsilon
            budget.delta_spent += delta
            budget.updated_at = timezone.now()
            budget.save(update_fields=["epsilon_spent", "delta_spent", "updated_at"])
            if inline:
                _finish(release, outcome)
            audit_append(
                workspace=workspace,
                actor=actor,
                action="privacy.release",
                target=f"dataset:{node.key}",
                payload={
                    "release": str(release.pk),
                    "query": query,
                    "epsilon": epsilon,
                    "delta": delta,
                    "budget_left": {"epsilon": budget.epsilon_left, "delta": budget.delta_left},
                    "state": release.state,
                },
            )
            if not inline:
                work_dispatch(release)
    if refusal is not None:
        _refuse(workspace, actor, node, query, *refusal)
    return release, "released" if inline else "queued"


def _refusal(budget: PrivacyBudget | None, epsilon: float, delta: float) -> tuple[str, float, float] | None:
    """(reason, epsilon left, delta left) when the release does not fit the budget, else None."""
    if budget is None:
        return "no privacy budget is set for this dataset version", 0.0, 0.0
    if epsilon > budget.epsilon_left + 1e-12 or delta > budget.delta_left + 1e-15:
        return (
            f"the release needs epsilon {epsilon:g} and delta {delta:g}; the budget has epsilon "
            f"{budget.epsilon_left:g} and delta {budget.delta_left:g} left",
            budget.epsilon_left,
            budget.delta_left,
        )
    return None


def _refuse(workspace, actor, node, query, message: str, epsilon_left: float, delta_left: float) -> None:
    """Record the refusal (after the spending transaction, which changed nothing) and raise 409."""
    with transaction.atomic():
        audit_append(
            workspace=workspace,
            actor=actor,
            action="privacy.refuse",
            target=f"dataset:{node.key}",
            payload={
                "query": query,
                "reason": message,
                "budget_left": {"epsilon": epsilon_left, "delta": delta_left},
            },
        )
    raise BudgetExceeded(message, extra={"budget_left": {"epsilon": epsilon_left, "delta": delta_left}})


def _finish(release: PrivacyRelease, outcome: dict[str, Any]) -> None:
    """Store the computed release and its lineage node (PrivacyRelease DERIVED_FROM the dataset)."""
    release.raw_value = outcome["value"]
    release.value = mechanisms.published(release.query, outcome["value"])
    release.scale = outcome["scale"]
    release.accuracy = {
        **(outcome["accuracy"] or {}),
        "privacy_map": {"epsilon": outcome["epsilon"], "delta": outcome["delta"]},
    }
    release.state, release.progress = WorkState.SUCCEEDED, 1.0
    release.finished_at = timezone.now()
    batch = Batch()
    properties = {
        "statistic": release.query["statistic"],
        "column": release.query.get("column"),
        "mechanism": release.mechanism,
        "epsilon": release.epsilon,
        "delta": release.delta,
        "value": release.value,
        # Shown wherever the node is (the lineage explorer): the value is a noisy release, this noisy.
        "accuracy": (release.accuracy or {}).get("statement", "a differentially private (noisy) release"),
    }
    ref = batch.node(NodeSpec(NodeKind.PRIVACY_RELEASE, f"dp-{release.pk}", properties=properties))
    batch.edge(EdgeKind.DERIVED_FROM, ref, (release.dataset_node.kind, release.dataset_node.key))
    lineage_record(
        workspace=release.workspace,
        actor=SYSTEM,
        batch=batch,
        source="privacy",
        body={"release": str(release.pk)},
    )
    release.node = Node.objects.get(
        workspace=release.workspace, kind=NodeKind.PRIVACY_RELEASE, key=f"dp-{release.pk}"
    )
    release.save()


def release_compute(release_id: str) -> None:
    """Worker side of a large release: compute it. Any exception fails the release through its task
    (core.work.WorkTask), which gives the budget back (PrivacyRelease.on_failed)."""
    if work_start(PrivacyRelease, release_id) is None:
        return
    release = PrivacyRelease.objects.select_related("dataset_node", "workspace").get(pk=release_id)
    work_progress(PrivacyRelease, release_id, 0.1, f"computing the {release.query['statistic']}")
    outcome = compute(release.dataset_node, release.query)
    with transaction.atomic():
        release = (
            PrivacyRelease.objects.select_for_update()
            .select_related("dataset_node", "workspace")
            .get(pk=release_id)
        )
        if release.state == WorkState.RUNNING:
            _finish(release, outcome)


# --- datasheet summary --------------------------------------------------------------------------------


def summary_request(
    *,
    workspace: Workspace,
    actor: Actor,
    node: Node,
    epsilon: float,
    mechanism: str = "laplace",
    consistent: bool = False,
    on_worker: bool = False,
) -> list[PrivacyRelease]:
    """A DP summary: the row count, and per column a histogram (declared categories) or a mean
    (declared bounds; with a public row count) or a sum otherwise, epsilon split evenly. All or nothing.
    The releases share a summary id; `consistent` asks for each histogram to be shown adjusted to add
    up to the summary's count (privacy.selectors.latest_summary; the releases themselves are kept)."""
    meta = metadata(node)
    queries: list[dict[str, Any]] = [{"statistic": "count"}]
    for column, categories in sorted((meta.get("categories") or {}).items()):
        histogram = {"statistic": "histogram", "column": column, "categories": categories}
        queries.append({**histogram, "consistent_total": True} if consistent else histogram)
    for column, bounds in sorted((meta.get("bounds") or {}).items()):
        statistic = "mean" if meta.get("public_rows") is not None else "sum"
        queries.append({"statistic": statistic, "column": column, "bounds": bounds})
    share = epsilon / len(queries)
    # The same summary asked again has the same id, so its releases are answered again, not spent.
    released = [{k: v for k, v in q.items() if k not in PRESENTATION_KEYS} for q in queries]
    summary = hashlib.sha256(
        canonical_bytes({"queries": released, "epsilon": epsilon, "mechanism": mechanism})
    ).hexdigest()[:16]
    releases = []
    with transaction.atomic():
        budget = PrivacyBudget.objects.select_for_update().filter(dataset_node=node).first()
        refusal = _refusal(budget, epsilon, 0.0)
    if refusal is not None:
        _refuse(workspace, actor, node, {"summary": queries, "epsilon": epsilon}, *refusal)
    with transaction.atomic():
        for query in queries:
            request = {
                **query,
                "mechanism": mechanism,
                "epsilon": share,
                "purpose": "summary",
                "summary": summary,
            }
            release, _ = release_request(
                workspace=workspace, actor=actor, node=node, request=request, on_worker=on_worker
            )
            asked = bool(request.get("consistent_total"))
            if bool(release.query.get("consistent_total")) != asked:  # asked again, shown otherwise
                release.query = {k: v for k, v in release.query.items() if k != "consistent_total"}
                release.query.update({"consistent_total": True} if asked else {})
                release.save(update_fields=["query"])
            releases.append(release)
    return releases
