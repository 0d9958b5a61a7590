"""Roles a member can hold in a workspace, the API scopes, and which scopes each role may use.

A session user acts with every scope of their role. An API token acts with the scopes it was given,
and never more than its owner's current role allows: demoting a member narrows their tokens at once.
"""

from django.db import models


class Role(models.TextChoices):
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    COMPLIANCE_REVIEWER = "compliance_reviewer", "Compliance reviewer"
    AUDITOR = "auditor", "Auditor"
    CI = "ci", "CI pipeline"
    ADMIN = "admin", "Workspace admin"


SCOPES: dict[str, str] = {
    "workspace:read": "see the workspace and its members",
    "workspace:admin": "manage members and workspace settings",
    "token:manage": "create, list and revoke one's own API tokens",
    "artifact:read": "list and download artifacts",
    "artifact:write": "upload artifacts",
    "audit:read": "read and verify the audit log",
    "lineage:read": "query the lineage graph",
    "lineage:write": "record lineage",
    "model:read": "read the model registry",
    "model:write": "register models and versions",
    "datasheet:write": "create and edit datasheets",
    "explain:run": "request explanations and fairness assessments",
    "privacy:release": "request differentially private statistics",
    "privacy:budget": "set privacy budgets",
    "gate:check": "evaluate promotion gates",
    "promotion:request": "request a stage change",
    "approval:decide": "approve or reject promotion requests",
    "policy:write": "create and edit policies",
    "report:export": "export lineage and audit reports",
}

_COMMON = {"workspace:read", "token:manage"}

ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.DATA_SCIENTIST: frozenset(
        _COMMON
        | {
            "artifact:read",
            "artifact:write",
            "lineage:read",
            "lineage:write",
            "model:read",
            "model:write",
            "datasheet:write",
            "explain:run",
            "privacy:release",
            "gate:check",
            "promotion:request",
        }
    ),
    Role.COMPLIANCE_REVIEWER: frozenset(
        _COMMON
        | {"artifact:read", "lineage:read", "model:read", "audit:read", "gate:check", "approval:decide"}
    ),
    Role.AUDITOR: frozenset(
        _COMMON | {"artifact:read", "lineage:read", "model:read", "audit:read", "report:export"}
    ),
    Role.CI: frozenset(
        _COMMON
        | {"artifact:read", "artifact:write", "lineage:read", "lineage:write", "model:read", "gate:check"}
    ),
    Role.ADMIN: frozenset(SCOPES),
}


# What a token gets when it is created without naming scopes: what the role's members usually hand a
# program (a notebook, a pipeline, an auditor's script), never more than the role allows. Approving
# and administering stay with people, so they are named explicitly when a token needs them.
DEFAULT_TOKEN_SCOPES: dict[str, frozenset[str]] = {
    Role.DATA_SCIENTIST: ROLE_SCOPES[Role.DATA_SCIENTIST] - _COMMON,
    Role.COMPLIANCE_REVIEWER: frozenset({"artifact:read", "lineage:read", "model:read", "audit:read"}),
    Role.AUDITOR: ROLE_SCOPES[Role.AUDITOR] - _COMMON,
    Role.CI: frozenset({"gate:check"}),
    Role.ADMIN: frozenset({"workspace:read", "model:read", "lineage:read", "audit:read"}),
}


def scopes_for_role(role: str) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())


def default_token_scopes(role: str) -> frozenset[str]:
    return DEFAULT_TOKEN_SCOPES.get(role, frozenset())
