"""A small workspace with one of every kind of object the API serves, made in a few seconds without a
worker: members and a pending invitation, artifacts, a dataset version and a registered model version
with their lineage, an alias, both kinds of datasheet, policies, a privacy budget with releases and a
DP summary, queued explanation and fairness jobs, a promotion request, a signed gate decision and a
queued report. What the API fuzzing (scripts/fuzz_api.sh) and the schema tests run against.

Everything goes through the services the API calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import skops.io as sio
from django.contrib.auth import get_user_model
from django.db import transaction
from sklearn.tree import DecisionTreeClassifier

from core.actors import SYSTEM, Actor
from core.artifacts import artifact_store_bytes
from core.models import Workspace
from core.roles import Role, scopes_for_role
from core.tokens import api_token_create
from core.workspaces import invitation_create, membership_add, workspace_create
from explain import services as explain
from explain.models import JobKind
from governance import reports
from governance import services as governance
from governance.models import ModelVersion, Stage
from lineage.native import native_batch
from lineage.services import lineage_record
from privacy import services as privacy

MODEL, MODEL_VERSION = "scorer", "1"
DATASET, DATASET_VERSION = "credit", "v1"
FEATURES = ["score", "age"]
POLICIES = [
    {
        "name": "staging-basics",
        "stages": ["staging"],
        "rules": [{"id": "card", "type": "datasheet_complete", "sections": ["model_details"]}],
    },
    {
        "name": "production-readiness",
        "stages": ["production"],
        "rules": [
            {"id": "accuracy", "type": "metric_threshold", "metric": "accuracy", "min": 0.8},
            {"id": "reviewers", "type": "approvals", "count": 1, "role": "compliance_reviewer"},
        ],
    },
]


@dataclass
class Sample:
    workspace: Workspace
    version: ModelVersion
    token: str  # the admin's, with every scope of the admin role


@transaction.atomic
def sample_workspace_create(*, slug: str = "sample", admin_username: str = "sample-admin") -> Sample:
    users = get_user_model()
    admin = users.objects.create_user(username=admin_username)
    ws = workspace_create(slug=slug, name=slug.title(), actor=SYSTEM, admin=admin)
    by_admin = Actor(user=admin)
    people = {}
    for role in (Role.DATA_SCIENTIST, Role.COMPLIANCE_REVIEWER):
        user = users.objects.create_user(username=f"{slug}-{role.value.replace('_', '-')}")
        membership_add(workspace=ws, actor=by_admin, username=user.get_username(), role=role)
        people[role] = Actor(user=user)
    author, reviewer = people[Role.DATA_SCIENTIST], people[Role.COMPLIANCE_REVIEWER]
    invitation_create(workspace=ws, actor=by_admin, username=f"{slug}-invited", role=Role.AUDITOR)

    frame = _frame()
    data = artifact_store_bytes(
        workspace=ws, actor=author, data=frame.to_csv(index=False).encode(), filename=f"{DATASET}.csv"
    )
    events = [
        {
            "type": "node",
            "kind": "DatasetVersion",
            "key": f"{DATASET}@{DATASET_VERSION}",
            "artifact": str(data.pk),
            "version_of": {"kind": "Dataset", "key": DATASET},
            "properties": {
                "rows": len(frame),
                "privacy": {
                    "unit": 1,
                    "public_rows": len(frame),
                    "bounds": {"age": [18, 90]},
                    "categories": {"sex": ["Female", "Male"]},
                },
            },
        }
    ]
    body = {"events": events}
    lineage_record(workspace=ws, actor=author, batch=native_batch(body), source="sample", body=body)

    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame[FEATURES], frame["label"])
    weights = artifact_store_bytes(
        workspace=ws, actor=author, data=sio.dumps(model), filename=f"{MODEL}.skops"
    )
    version = governance.version_register(
        workspace=ws,
        actor=author,
        name=MODEL,
        version=MODEL_VERSION,
        artifact=str(weights.pk),
        description="a decision tree on two columns",
        metrics={"accuracy": 0.9},
        run={"key": f"train-{MODEL}-{MODEL_VERSION}", "job": f"train-{MODEL}"},
        datasets=[f"{DATASET}@{DATASET_VERSION}"],
        commit={"key": "0123abc"},
        environment={"key": "py311"},
    )
    governance.alias_set(workspace=ws, actor=author, name=MODEL, alias="champion", version=MODEL_VERSION)
    for kind, name, subject_version, content in (
        ("datasheet", DATASET, DATASET_VERSION, {"motivation": {"purpose": "a sample"}}),
        ("model_card", MODEL, MODEL_VERSION, {"model_details": {"name": MODEL, "version": MODEL_VERSION}}),
    ):
        governance.datasheet_push(
            workspace=ws, actor=author, kind=kind, name=name, version=subject_version, content=content
        )
    for document in POLICIES:
        governance.policy_upload(workspace=ws, actor=by_admin, document=document)

    node = privacy.dataset_version_node(ws, DATASET, DATASET_VERSION)
    privacy.budget_set(workspace=ws, actor=by_admin, node=node, epsilon=50.0, delta=1e-5)
    privacy.summary_request(workspace=ws, actor=author, node=node, epsilon=1.0)
    privacy.release_request(
        workspace=ws,
        actor=author,
        node=node,
        request={"statistic": "count", "group_by": "sex", "mechanism": "laplace", "epsilon": 0.5},
    )

    model_node = explain.model_version_node(ws, MODEL, MODEL_VERSION)
    dataset_key = f"{DATASET}@{DATASET_VERSION}"
    for kind, params in (
        (JobKind.EXPLANATION, {"features": FEATURES, "rows": 50}),
        (JobKind.FAIRNESS, {"features": FEATURES, "target": "label", "sensitive_features": ["sex"]}),
    ):
        explain.job_create(
            workspace=ws,
            actor=author,
            kind=kind,
            model_node=model_node,
            dataset_key=dataset_key,
            params=params,
        )
    governance.promotion_request(
        workspace=ws, actor=author, version=version, stage=Stage.STAGING, comment="a first look"
    )
    governance.gate_check(workspace=ws, actor=reviewer, version=version, stage=Stage.PRODUCTION)
    reports.report_request(workspace=ws, actor=reviewer, version=version)

    _, token = api_token_create(
        workspace=ws, actor=by_admin, user=admin, name="sample", scopes=sorted(scopes_for_role(Role.ADMIN))
    )
    return Sample(workspace=ws, version=version, token=token)


def _frame(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "score": rng.random(rows),
            "age": rng.integers(18, 90, rows),
            "sex": rng.choice(["Female", "Male"], rows),
        }
    )
    frame["label"] = (frame["score"] > 0.5).astype(int)
    return frame
