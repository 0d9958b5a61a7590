"""Privacy budgets and differentially private releases.

A release spends from its dataset version's budget atomically: the budget row is locked
(SELECT ... FOR UPDATE on PostgreSQL; SQLite's write transactions are serialised by BEGIN IMMEDIATE),
the remaining budget is checked, and the release is recorded and the spend written in the same
transaction. A query asked before returns the stored answer and spends nothing. Small releases are
computed inside that transaction; large ones reserve their budget there and are computed by a worker,
which gives the budget back if the computation fails.

The dataset's privacy metadata lives on its DatasetVersion lineage node, under properties["privacy"]:

    {"unit": 1,                      # rows one person may contribute (the privacy unit)
     "public_rows": 48842,           # the row count, if it is public (needed for mean and variance)
     "bounds": {"age": [17, 90]},    # default bounds of numeric columns
     "categories": {"sex": ["Female", "Male"]}}   # public categories (histograms, group-by)
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
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
from core.errors import ApplicationError, Conflict, FieldError
from core.models import Workspace
from core.work import WorkState, work_dispatch, work_progress, work_start
from lineage.kinds import EdgeKind, NodeKind
from lineage.models import Node
from lineage.selectors import version_node
from lineage.services import lineage_record
from lineage.specs import Batch, NodeSpec
from privacy import mechanisms
from privacy.models import PrivacyBudget, PrivacyRelease

logger = logging.getLogger(__name__)
NUMERIC_STATISTICS = ("sum", "mean", "variance", "quantile")


class BudgetExceeded(Conflict):
    title = "Privacy budget exceeded"


def dataset_version_node(workspace: Workspace, name: str, version: str) -> Node:
    return version_node(workspace=workspace, kind=NodeKind.DATASET_VERSION, name=name, version=version)


def metadata(node: Node) -> dict[str, Any]:
    """The dataset version's public facts (`properties.privacy`), checked: a malformed entry is a 400
    naming it (`dataset.privacy.bounds.age`), never a crash halfway through a release."""
    meta = node.properties.get("privacy") or {}
    if not isinstance(meta, dict):
        raise ApplicationError("dataset.privacy must be an object", field="dataset.privacy")
    errors: list[FieldError] = []
    for section in ("bounds", "categories"):
        value = meta.get(section)
        if value is not None and not isinstance(value, dict):
            errors.append(FieldError(f"dataset.privacy.{section}", "must be an object keyed by column"))
    for column, bounds in (meta.get("bounds") or {}).items() if not errors else ():
        if not _valid_bounds(bounds):
            errors.append(
                FieldError(
                    f"dataset.privacy.bounds.{column}", "must be [lower, upper] numbers with lower < upper"
                )
            )
    for column, categories in (meta.get("categories") or {}).items() if not errors else ():
        problem = _categories_problem(categories)
        if problem:
            errors.append(FieldError(f"dataset.privacy.categories.{column}", problem))
    rows = meta.get("public_rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        errors.append(FieldError("dataset.privacy.public_rows", "must be a whole number of rows"))
    if errors:
        raise ApplicationError(
            f"the dataset version's privacy metadata is not valid ({errors[0].field}: {errors[0].message})",
            errors=errors,
        )
    return meta


def _categories_problem(categories: Any) -> str:
    if not isinstance(categories, list) or not categories:
        return "must be a non-empty list of values"
    if not all(isinstance(c, (str, int, float, bool)) for c in categories):
        return "values must be strings or numbers"
    labels = [str(c) for c in categories]
    if len(set(labels)) != len(labels):
        return "values must be distinct"
    return ""


def privacy_unit(meta: dict[str, Any]) -> int:
    """How many rows one person may contribute, from the checked metadata (default 1)."""
    unit = meta.get("unit", 1)
    return int(unit) if isinstance(unit, int) and unit >= 1 else 1


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


# --- queries ------------------------------------------------------------------------------------------


def _frame(node: Node) -> pd.DataFrame:
    if node.artifact_id is None:
        raise ApplicationError(f"dataset version {node.key} has no data attached", field="dataset")
    try:
        return loading.cached_table(str(node.artifact_id))
    except loading.DataError as error:
        raise ApplicationError(f"dataset version {node.key}: {error}", field="dataset") from error


def _valid_bounds(bounds: Any) -> bool:
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        return False
    if not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds):
        return False
    return bounds[0] < bounds[1]


def normalise_query(node: Node, request: dict[str, Any]) -> dict[str, Any]:
    """Complete the request from the metadata and check it against the data; 400 on any problem."""
    meta = metadata(node)
    frame = _frame(node)
    query = {k: v for k, v in request.items() if v is not None}
    statistic, column = query["statistic"], query.get("column")
    errors: list[FieldError] = []
    if statistic != "count" and not column:
        errors.append(FieldError("column", f"{statistic} needs a column"))
    if column and column not in frame.columns:
        errors.append(FieldError("column", f"the dataset has no column {column!r}"))
    if column and column in frame.columns and statistic in NUMERIC_STATISTICS:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            errors.append(
                FieldError("column", f"column {column!r} is not numeric; {statistic} needs numbers")
            )
        bounds = query.get("bounds") or (meta.get("bounds") or {}).get(column)
        if bounds is None:
            errors.append(
                FieldError(
                    "bounds", f"{statistic} of {column!r} needs bounds (in the request or the metadata)"
                )
            )
        elif not _valid_bounds(bounds):
            errors.append(
                FieldError(
                    "bounds", f"the bounds of {column!r} must be [lower, upper] numbers with lower < upper"
                )
            )
        else:
            query["bounds"] = [float(bounds[0]), float(bounds[1])]
    if statistic == "histogram" and column and column in frame.columns:
        categories = query.get("categories") or (meta.get("categories") or {}).get(column)
        if not categories:
            errors.append(FieldError("categories", f"a histogram of {column!r} needs its public categories"))
        elif _categories_problem(categories):
            errors.append(FieldError("categories", _categories_problem(categories)))
        else:
            query["categories"] = [str(c) for c in categories]
    group_by = query.get("group_by")
    if group_by:
        if group_by not in frame.columns:
            errors.append(FieldError("group_by", f"the dataset has no column {group_by!r}"))
        elif not (meta.get("categories") or {}).get(group_by):
            errors.append(
                FieldError("group_by", f"group keys must be public: declare the categories of {group_by!r}")
            )
        else:
            query["group_categories"] = [str(c) for c in meta["categories"][group_by]]
        if statistic in ("mean", "variance"):
            errors.append(
                FieldError("group_by", f"{statistic} by group needs public group sizes; use sum and count")
            )
    if statistic in ("mean", "variance") and meta.get("public_rows") is None:
        errors.append(
            FieldError(
                "statistic", f"{statistic} needs the dataset's public row count (metadata `public_rows`)"
            )
        )
    if errors:
        raise ApplicationError("the release cannot be made as asked", errors=errors)
    query["unit"] = privacy_unit(meta)
    return query


def query_hash(query: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(query)).hexdigest()


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
    from opendp.mod import OpenDPException

    try:
        return compute(node, query)
    except OpenDPException as error:
        reason = (getattr(error, "message", None) or str(error)).strip().splitlines()[0][:300]
        raise ApplicationError(f"OpenDP cannot make this release: {reason}", field="query") from error


def compute(node: Node, query: dict[str, Any]) -> dict[str, Any]:
    """Run the release (on the whole column or per public group) and describe it."""
    frame = _frame(node)
    meta = metadata(node)
    rows = meta.get("public_rows")
    unit = query["unit"]
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
    inline = not on_worker and len(_frame(node)) <= settings.PRIVACY_INLINE_MAX_ROWS
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
    release.value = outcome["value"]
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
    on_worker: bool = False,
) -> list[PrivacyRelease]:
    """A DP summary: the row count, and per column a histogram (declared categories) or a mean
    (declared bounds; with a public row count) or a sum otherwise, epsilon split evenly. All or nothing."""
    meta = metadata(node)
    queries: list[dict[str, Any]] = [{"statistic": "count"}]
    for column, categories in sorted((meta.get("categories") or {}).items()):
        queries.append({"statistic": "histogram", "column": column, "categories": categories})
    for column, bounds in sorted((meta.get("bounds") or {}).items()):
        statistic = "mean" if meta.get("public_rows") is not None else "sum"
        queries.append({"statistic": statistic, "column": column, "bounds": bounds})
    share = epsilon / len(queries)
    releases = []
    with transaction.atomic():
        budget = PrivacyBudget.objects.select_for_update().filter(dataset_node=node).first()
        refusal = _refusal(budget, epsilon, 0.0)
    if refusal is not None:
        _refuse(workspace, actor, node, {"summary": queries, "epsilon": epsilon}, *refusal)
    with transaction.atomic():
        for query in queries:
            request = {**query, "mechanism": mechanism, "epsilon": share, "purpose": "summary"}
            release, _ = release_request(
                workspace=workspace, actor=actor, node=node, request=request, on_worker=on_worker
            )
            releases.append(release)
    return releases


def latest_summary(node: Node) -> dict[str, Any] | None:
    """The dataset's most recent DP summary, for the datasheet's composition section."""
    releases = PrivacyRelease.objects.filter(
        dataset_node=node, state=WorkState.SUCCEEDED, query__purpose="summary"
    ).order_by("created_at")
    if not releases:
        return None
    return {
        "epsilon": math.fsum(r.epsilon for r in releases),
        "statistics": [
            {
                "statistic": r.query["statistic"],
                "column": r.query.get("column"),
                "value": r.value,
                "accuracy": r.accuracy,
            }
            for r in releases
        ],
    }
