"""Plain factory functions for the objects the tests need.

People and workspaces first, then the domain: a dataset version with its CSV artifact, a registered
model version with its model file and lineage, policies, datasheets, finished explanation and fairness
jobs, promotion requests and reviews, gate decisions, reports, privacy budgets and releases. Each
goes through the service the API calls (so it is an object the service could have made), except the
finished jobs, whose results are computed here the way a worker computes them, without a worker.

Defaults make a small, consistent world: `adult@v1` (score, sex, label; 400 rows) and `income@1`, a
depth-3 decision tree trained on it. Pass names to make several.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from django.contrib.auth import get_user_model
from django.utils import timezone
from sklearn.tree import DecisionTreeClassifier

from core.actors import SYSTEM, Actor
from core.artifacts import artifact_store_bytes
from core.models import Artifact, Membership, Workspace
from core.tokens import api_token_create
from core.workspaces import workspace_create
from explain import explainers, fairness
from explain.models import Job, JobKind, JobState
from governance import reports
from governance import services as governance
from governance.models import Datasheet, DatasheetKind, GateDecision, Policy, PromotionRequest, Report
from governance.models import ModelVersion as RegisteredVersion
from lineage.kinds import EdgeKind
from lineage.models import Edge, Node
from lineage.native import native_batch
from lineage.services import lineage_record
from privacy import services as privacy
from privacy.models import PrivacyBudget, PrivacyRelease

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"
FEATURES = ["score", "sex"]
TARGET = "label"


# --- people and workspaces -----------------------------------------------------------------------------


def make_user(username: str | None = None, **extra):
    username = username or f"user{next(_seq)}"
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)


def make_workspace(slug: str | None = None, *, admin=None) -> Workspace:
    slug = slug or f"ws{next(_seq)}"
    return workspace_create(slug=slug, name=slug.title(), actor=SYSTEM, admin=admin)


def make_member(workspace: Workspace, role: str, username: str | None = None):
    user = make_user(username)
    Membership.objects.create(workspace=workspace, user=user, role=role)
    return user


def make_token(workspace: Workspace, user, scopes: list[str], days: int | None = None) -> str:
    _, raw = api_token_create(
        workspace=workspace,
        actor=Actor(user=user),
        user=user,
        name="test",
        scopes=scopes,
        expires_in_days=days,
    )
    return raw


# --- data, models and artifacts -----------------------------------------------------------------------


def make_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Training data: `score` decides `label` (above 0.5), `sex` is a sensitive 0/1 column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"score": rng.random(rows), "sex": rng.integers(0, 2, rows)})
    frame[TARGET] = (frame["score"] > 0.5).astype(int)
    return frame


def train_model(frame: pd.DataFrame | None = None) -> DecisionTreeClassifier:
    """The depth-3 tree every default model version holds (deterministic for the same frame)."""
    frame = make_frame() if frame is None else frame
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[FEATURES], frame[TARGET])


def make_artifact(workspace: Workspace, user, data: bytes, filename: str, media_type: str = "") -> Artifact:
    """Bytes stored as `user` would upload them (content-addressed: the same bytes, the same row)."""
    return artifact_store_bytes(
        workspace=workspace, actor=Actor(user=user), data=data, filename=filename, media_type=media_type
    )


def record_lineage(workspace: Workspace, user, *events: dict[str, Any]) -> dict:
    """Native lineage events, recorded as the ingestion API records them."""
    body = {"events": list(events)}
    return lineage_record(
        workspace=workspace, actor=Actor(user=user), batch=native_batch(body), source="test", body=body
    )


def make_dataset_version(
    workspace: Workspace,
    user,
    key: str = "adult@v1",
    *,
    frame: pd.DataFrame | None = None,
    properties: dict[str, Any] | None = None,
) -> Node:
    """A DatasetVersion node (a version of the Dataset named before the `@`) holding its data as CSV."""
    frame = make_frame() if frame is None else frame
    data = make_artifact(workspace, user, frame.to_csv(index=False).encode(), f"{key}.csv")
    event: dict[str, Any] = {"type": "node", "kind": "DatasetVersion", "key": key, "artifact": str(data.pk)}
    if "@" in key:
        event["version_of"] = {"kind": "Dataset", "key": key.split("@", 1)[0]}
    if properties:
        event["properties"] = properties
    record_lineage(workspace, user, event)
    return Node.objects.get(workspace=workspace, kind="DatasetVersion", key=key)


def make_model_version(
    workspace: Workspace,
    user,
    name: str = "income",
    version: str = "1",
    *,
    datasets: Sequence[str] = ("adult@v1",),
    model: Any = None,
    frame: pd.DataFrame | None = None,
    metrics: dict[str, float] | None = None,
    run: str | None = None,
    job: str | None = "",
    commit: str = "c1",
    environment: str = "py311",
) -> RegisteredVersion:
    """`name@version` registered by `user` with its skops file, trained by run `run` (default
    `train-<name>-<version>`) of job `job` (default `train-<name>`; None: no job) on `datasets` (each
    made when it does not exist yet) from `commit` in `environment`."""
    frame = make_frame() if frame is None else frame
    for dataset in datasets:
        if not Node.objects.filter(
            workspace=workspace, kind="DatasetVersion", key=dataset, artifact__isnull=False
        ).exists():
            make_dataset_version(workspace, user, dataset, frame=frame)
    model = train_model(frame) if model is None else model
    weights = make_artifact(workspace, user, sio.dumps(model), f"{name}-{version}.skops")
    return governance.version_register(
        workspace=workspace,
        actor=Actor(user=user),
        name=name,
        version=version,
        artifact=str(weights.pk),
        metrics={"accuracy": 0.9} if metrics is None else metrics,
        run={"key": run or f"train-{name}-{version}", "job": f"train-{name}" if job == "" else job},
        datasets=list(datasets),
        commit={"key": commit},
        environment={"key": environment},
    )


# --- governance documents -----------------------------------------------------------------------------

ONE_REVIEW = [{"id": "reviewers", "type": "approvals", "count": 1, "role": "compliance_reviewer"}]


def make_policy(
    workspace: Workspace,
    user,
    name: str | None = None,
    *,
    stages: Sequence[str] = ("production",),
    rules: list[dict[str, Any]] | None = None,
) -> Policy:
    """A policy for `stages`; by default one rule: a compliance reviewer's approval."""
    document = {
        "name": name or f"policy-{next(_seq)}",
        "stages": list(stages),
        "rules": ONE_REVIEW if rules is None else rules,
    }
    return governance.policy_upload(workspace=workspace, actor=Actor(user=user), document=document)


def make_datasheet(
    workspace: Workspace,
    user,
    kind: str = DatasheetKind.MODEL_CARD,
    name: str = "income",
    version: str = "1",
    *,
    content: dict[str, Any] | None = None,
) -> Datasheet:
    """A new revision of the model card of `name@version` (or the datasheet of a dataset version)."""
    if content is None:
        content = (
            {"model_details": {"name": name, "version": version, "description": "a test model"}}
            if kind == DatasheetKind.MODEL_CARD
            else {"motivation": {"purpose": "a test dataset"}}
        )
    return governance.datasheet_push(
        workspace=workspace, actor=Actor(user=user), kind=kind, name=name, version=version, content=content
    )


# --- evidence: finished jobs, gate decisions ----------------------------------------------------------


def fairness_result(
    model: Any = None, frame: pd.DataFrame | None = None, sensitive: Sequence[str] = ("sex",)
) -> dict[str, Any]:
    """A fairness assessment's result, as the worker computes it (fewer bootstrap resamples)."""
    frame = make_frame() if frame is None else frame
    model = train_model(frame) if model is None else model
    return fairness.assess(
        frame[TARGET].to_numpy(), model.predict(frame[FEATURES]), frame[list(sensitive)], resamples=50
    )


def explanation_result(model: Any = None, frame: pd.DataFrame | None = None) -> dict[str, Any]:
    """An explanation's result summary, as the worker assembles it, from SHAP values on the CPU."""
    frame = make_frame() if frame is None else frame
    model = train_model(frame) if model is None else model
    X = frame[FEATURES].to_numpy(dtype=float)
    block = explainers.shap_block(model, X, "cpu")
    importance = explainers.importance(block.values)
    output = block.values.shape[2] - 1
    order = np.argsort(-importance[:, output])
    return {
        "rows": len(X),
        "features": FEATURES,
        "outputs": block.values.shape[2],
        "output_names": [str(c) for c in model.classes_],
        "expected_value": [float(v) for v in block.expected],
        "additivity_residual": explainers.residual(block.values, block.expected, block.output),
        "importance": {f: [float(v) for v in importance[i]] for i, f in enumerate(FEATURES)},
        "top_features": [FEATURES[i] for i in order],
        "plot_output": output,
        "figures": explainers.figures(block.values, X, FEATURES, output),
    }


def make_job(
    version: RegisteredVersion,
    kind: str = JobKind.EXPLANATION,
    *,
    dataset: Node | None = None,
    state: str = JobState.SUCCEEDED,
    result: dict[str, Any] | None = None,
    user=None,
    **fields: Any,
) -> Job:
    """A job about `version` on `dataset` (the version's first training dataset by default), on the
    files both nodes hold. A succeeded job without a `result` gets one computed for the default model
    and data; pass `result` when the version holds another model, or to save the computation."""
    if dataset is None:
        trained_on = Edge.objects.filter(src=version.node, kind=EdgeKind.TRAINED_ON).values("dst")
        dataset = Node.objects.filter(pk__in=trained_on).order_by("pk").first()
        if dataset is None:
            raise ValueError(f"{version} has no training dataset: pass `dataset`")
    if state == JobState.SUCCEEDED and result is None:
        result = fairness_result() if kind == JobKind.FAIRNESS else explanation_result()
    finished = state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
    params = {"features": FEATURES}
    if kind == JobKind.FAIRNESS:
        params.update(target=TARGET, sensitive_features=(result or {}).get("sensitive_features", ["sex"]))
    defaults: dict[str, Any] = {
        "workspace": version.node.workspace,
        "kind": kind,
        "state": state,
        "model_node": version.node,
        "dataset_node": dataset,
        "model_artifact_id": version.node.artifact_id,
        "dataset_artifact_id": dataset.artifact_id,
        "params": params,
        "backend": "cpu" if finished else "",
        "progress": 1.0 if state == JobState.SUCCEEDED else 0.0,
        "result": result,
        "created_by": user,
        "finished_at": timezone.now() if finished else None,
    }
    return Job.objects.create(**{**defaults, **fields})


def make_gate_decision(version: RegisteredVersion, user, stage: str = "production") -> GateDecision:
    """A signed gate decision for `stage`, checked by `user`."""
    return governance.gate_check(
        workspace=version.node.workspace, actor=Actor(user=user), version=version, stage=stage
    )


# --- promotion --------------------------------------------------------------------------------------


def make_promotion_request(
    version: RegisteredVersion, user, stage: str = "production", comment: str = "please review"
) -> PromotionRequest:
    """An open request, by `user`, to move `version` to `stage`."""
    return governance.promotion_request(
        workspace=version.node.workspace,
        actor=Actor(user=user),
        version=version,
        stage=stage,
        comment=comment,
    )


def make_review(
    request: PromotionRequest, reviewer, *, approve: bool = True, comment: str = "evidence read"
) -> PromotionRequest:
    """`reviewer` approves (or rejects) `request`; an approval moves the stage if the gate passes."""
    reviewed, _ = governance.review(
        workspace=request.workspace,
        actor=Actor(user=reviewer),
        request_id=request.pk,
        approve=approve,
        comment=comment,
    )
    return reviewed


def make_report(version: RegisteredVersion, user) -> Report:
    """A queued report of `version` (a worker would render it once the transaction commits)."""
    return reports.report_request(workspace=version.node.workspace, actor=Actor(user=user), version=version)


# --- privacy ----------------------------------------------------------------------------------------

PRIVACY = {"unit": 1, "bounds": {"score": [0, 1]}, "categories": {"sex": [0, 1]}}


def make_private_dataset_version(workspace: Workspace, user, key: str = "adult@v1", **kwargs: Any) -> Node:
    """A dataset version with the privacy metadata DP releases need (unit, bounds, categories)."""
    frame = kwargs.pop("frame", None)
    frame = make_frame() if frame is None else frame
    meta = {**PRIVACY, "public_rows": len(frame)}
    return make_dataset_version(workspace, user, key, frame=frame, properties={"privacy": meta}, **kwargs)


def make_privacy_budget(node: Node, admin, epsilon: float = 10.0, delta: float = 1e-5) -> PrivacyBudget:
    return privacy.budget_set(
        workspace=node.workspace, actor=Actor(user=admin), node=node, epsilon=epsilon, delta=delta
    )


def make_dp_release(node: Node, user, **request: Any) -> PrivacyRelease:
    """A DP release on `node` (a count with epsilon 0.1 by default), spent from its budget."""
    release, _ = privacy.release_request(
        workspace=node.workspace,
        actor=Actor(user=user),
        node=node,
        request={"statistic": "count", "mechanism": "laplace", "epsilon": 0.1, **request},
    )
    return release
