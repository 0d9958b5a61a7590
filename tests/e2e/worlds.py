"""The worlds the browser tests open pages in, and signing in.

`build_world`: income@1 with its evidence and alice's open request. `build_reviewed_world`: income@1
in production, alice's request to move income@2 (other training data, a fuller policy) there. The
fixtures `world` and `reviewed_world` (conftest.py) build them per test."""

from __future__ import annotations

from core.roles import Role
from explain.models import JobKind
from governance.models import DatasheetKind, ModelVersion, Stage
from tests.factories import (
    PASSWORD,
    explanation_result,
    fairness_result,
    make_datasheet,
    make_frame,
    make_job,
    make_member,
    make_model_version,
    make_policy,
    make_promotion_request,
    make_review,
    make_user,
    make_workspace,
    train_model,
)

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}

CARD = {
    "model_details": {
        "name": "income",
        "version": "2",
        "owners": ["alice", "the data science team"],
        "type": "decision tree (depth 3)",
        "description": "Flags census records likely to earn more than $50K a year.",
    },
    "intended_use": {
        "primary_uses": "Triage of survey records for a second reading.",
        "out_of_scope_uses": "Credit, hiring or housing decisions about a person.",
    },
    "ethical_considerations": {"sensitive_data": "sex is a feature", "risks_and_harms": "bias by sex"},
}
DATASHEET = {
    "motivation": {"purpose": "Census records for the income benchmark.", "creators": "Becker and Kohavi"},
    "composition": {"instances": "One row per person", "sensitive_attributes": ["sex"]},
}


POLICY_RULES = [
    {
        "id": "card",
        "type": "datasheet_complete",
        "sections": ["model_details", "intended_use"],
        "min_completeness": 0.5,
    },
    {"id": "accuracy", "type": "metric_threshold", "metric": "accuracy", "min": 0.8},
    {
        "id": "parity-sex",
        "type": "fairness_bound",
        "metric": "demographic_parity_difference",
        "sensitive_feature": "sex",
        "max": 0.25,
        "description": "Selection rates of women and men within a bound.",
    },
    {"id": "explained", "type": "explanation_present", "top_k": 2},
    {
        "id": "credit-only",
        "type": "metric_threshold",
        "metric": "auc",
        "min": 0.9,
        "applies_to": {"models": ["credit-*"]},
    },
    {"id": "reviewers", "type": "approvals", "count": 1, "role": "compliance_reviewer"},
]


def login(page, base: str, user) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def build_world() -> dict:
    """income@1 by alice, trained on adult@v1 (run train-1, commit c1, environment py311), with a
    fairness assessment and an explanation made as the worker makes them, a policy needing one
    reviewer's approval, and alice's open request to move it to production."""
    admin = make_user("admin")
    workspace = make_workspace("acme", admin=admin)
    author = make_member(workspace, Role.DATA_SCIENTIST, "alice")
    reviewer = make_member(workspace, Role.COMPLIANCE_REVIEWER, "bob")
    version = make_model_version(workspace, author, "income", "1", run="train-1", job=None)
    make_job(version, JobKind.FAIRNESS)
    make_job(version, JobKind.EXPLANATION)  # so the SHAP charts are on the page too
    make_policy(workspace, admin, "prod")
    request = make_promotion_request(version, author, "production", comment="please")
    return {
        "workspace": workspace,
        "author": author,
        "reviewer": reviewer,
        "request": request,
        "version": version,
    }


def build_reviewed_world() -> dict:
    """income@1 in production; alice's open request to move income@2 there."""
    admin = make_user("admin")
    workspace = make_workspace("acme", admin=admin)
    alice = make_member(workspace, Role.DATA_SCIENTIST, "alice")
    bob = make_member(workspace, Role.COMPLIANCE_REVIEWER, "bob")
    rita = make_member(workspace, Role.COMPLIANCE_REVIEWER, "rita")
    make_policy(workspace, admin, "prod")  # revision 1: one reviewer's approval
    first = make_model_version(workspace, alice, "income", "1", metrics={"accuracy": 0.9312, "auc": 0.9})
    make_job(first, JobKind.FAIRNESS)
    make_job(first, JobKind.EXPLANATION)
    make_datasheet(workspace, alice, name="income", version="1", content={**CARD, "model_details": {}})
    make_review(make_promotion_request(first, alice, "production"), rita, comment="first release")
    make_policy(workspace, admin, "prod", rules=POLICY_RULES)  # revision 2, for income@2
    frame = make_frame(seed=1)
    model = train_model(frame)
    second = make_model_version(
        workspace,
        alice,
        "income",
        "2",
        datasets=("adult@v2",),
        frame=frame,
        model=model,
        metrics={"accuracy": 0.9471234567, "auc": 0.91},
    )
    make_job(second, JobKind.FAIRNESS, result=fairness_result(model, frame))
    make_job(second, JobKind.EXPLANATION, result=explanation_result(model, frame))
    make_datasheet(workspace, alice, name="income", version="2", content=CARD)
    make_datasheet(workspace, alice, DatasheetKind.DATASET, "adult", "v2", content=DATASHEET)
    request = make_promotion_request(second, alice, "production", comment="fairer on adult@v2")
    assert ModelVersion.objects.get(pk=first.pk).stage == Stage.PRODUCTION
    return {
        "workspace": workspace,
        "bob": bob,
        "alice": alice,
        "first": first,
        "second": second,
        "request": request,
    }
