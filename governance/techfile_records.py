"""Parts of the technical file (governance/techfile.py) about records rather than the model itself:
the model card, the differentially private releases of the training data with their budgets, and the
record-keeping (the audit chain's head and how long logs and technical files are kept). Each function
takes the file being written (its `cite`, `say` and `lack`) and writes into one section."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from core.models import Workspace
from core.work import WorkState
from explain.selectors import latest_fairness_assessments
from governance.checks import data_evidence
from governance.models import Datasheet, DatasheetKind, ModelVersion
from governance.reports import contents
from governance.selectors import datasheet_view
from lineage.models import Node
from privacy.models import PrivacyBudget, PrivacyRelease

# Articles 12, 18 and 19 of the AI Act: logs at least six months, technical documentation ten years.
MIN_LOG_DAYS, MIN_TECHFILE_YEARS = 183, 10


def model_card(file: Any, version: ModelVersion) -> None:
    """Section 1: the model card (its newest revision), cited."""
    card = (
        Datasheet.objects.filter(subject_id=version.node_id, kind=DatasheetKind.MODEL_CARD)
        .select_related("subject")
        .first()
    )
    if card is None:
        file.lack(1, "the version has no model card")
        return
    done = datasheet_view(sheet=card)["completeness"]["overall"]
    cite = file.cite(
        f"datasheet:{card.kind}:{card.subject.key}@{card.revision}",
        {
            "kind": card.kind,
            "subject": card.subject.key,
            "revision": card.revision,
            "created_at": card.created_at.isoformat(),
            "content": card.content,
        },
    )
    file.say(1, f"Model card, revision {card.revision}: {done:.0%} complete.", cite)


def evaluation_data(file: Any, version: ModelVersion) -> None:
    """Section 2: the data each fairness assessment ran on, and whether it is disjoint from the
    training data (the rows it shares with it, as the assessment measured them), cited."""
    for assessment in latest_fairness_assessments(model_node=version.node):
        cite = file.cite(f"job:{assessment.job_id}", contents._fairness(assessment))
        data = data_evidence(assessment)
        sha = f" (file SHA-256 {data['dataset_sha256']})" if data.get("dataset_sha256") else ""
        features = ", ".join(assessment.sensitive_features)
        if data.get("training_overlap_rows") is None:
            what = f"the data of the fairness assessment by {features}"
            file.lack(2, f"{what} cannot be shown disjoint from the training data")
            file.say(2, f"The fairness assessment by {features} ran on {data['dataset']}{sha}.", cite)
            continue
        overlap, rows = data["training_overlap_rows"], data["evaluation_rows"]
        # Rows are compared by their values over the columns the assessment used: an equal row may be a
        # copy of a training row or a different person with the same values; the file says which it knows.
        verdict = (
            "disjoint from the training data"
            if overlap == 0
            else f"{overlap:,} of them equal a training row over the model's columns"
        )
        file.say(
            2,
            f"The fairness assessment by {features} ran on {data['dataset']}{sha}: {rows:,} rows, {verdict}.",
            cite,
        )


def privacy_releases(file: Any, training: list[Node]) -> None:
    """Section 2: each training dataset's DP budget and the releases made from it (what was spent, with
    which mechanism, and each release's 95% accuracy), cited."""
    for node in training:
        budget = PrivacyBudget.objects.filter(dataset_node=node).first()
        releases = list(
            PrivacyRelease.objects.filter(dataset_node=node, state=WorkState.SUCCEEDED).order_by("created_at")
        )
        if budget is None and not releases:
            continue
        cites = []
        if budget is not None:
            cites.append(
                file.cite(
                    f"privacy:budget:{node.key}",
                    {
                        "dataset": node.key,
                        "epsilon_total": budget.epsilon_total,
                        "delta_total": budget.delta_total,
                        "epsilon_spent": budget.epsilon_spent,
                        "delta_spent": budget.delta_spent,
                    },
                )
            )
        for release in releases:
            cites.append(
                file.cite(
                    f"privacy:release:{release.pk}",
                    {
                        "dataset": node.key,
                        "query": release.query,
                        "mechanism": release.mechanism,
                        "epsilon": release.epsilon,
                        "delta": release.delta,
                        "value": release.value,
                        "raw_value": release.raw_value,
                        "accuracy": release.accuracy,
                    },
                )
            )
        spent = (
            f"epsilon {budget.epsilon_spent:.3g} of {budget.epsilon_total:.3g}" if budget else "no budget set"
        )
        file.say(
            2,
            f"Differential privacy on {node.key}: {len(releases)} noisy release(s) published "
            f"({spent} spent); "
            "each release states its 95% accuracy.",
            *cites,
        )


def record_keeping(file: Any, workspace: Workspace) -> None:
    """Section 9: the audit chain's head, and how long logs and technical files are kept."""
    head = file.cite(
        "audit:head",
        {"workspace": workspace.slug, "seq": workspace.audit_head_seq, "hash": workspace.audit_head_hash},
    )
    file.say(
        9,
        f"Events are logged automatically in a hash chain; its head is event {workspace.audit_head_seq}.",
        head,
    )
    days, years = settings.AUDIT_LOG_RETENTION_DAYS, settings.TECHFILE_RETENTION_YEARS
    if days >= MIN_LOG_DAYS:
        file.say(
            9,
            f"Logs are kept at least {days} days (the audit table is append-only; nothing in it is deleted "
            "sooner); the log of any period is exported signed and verifiable offline "
            "(GET /api/v1/audit/export; mlgov verify-audit-export).",
        )
    else:
        file.lack(9, f"logs are kept {days} days, under the six months Articles 12 and 19 ask for")
    if years >= MIN_TECHFILE_YEARS:
        file.say(
            9, f"Technical files and the evidence they cite are kept at least {years} years (Article 18)."
        )
    else:
        file.lack(9, f"technical files are kept {years} years, under the ten Article 18 asks for")
