"""What a report holds: everything a reviewer saw and an auditor checks about one model version,
gathered into the document the service signs (`bundle`).

The report's sections (SECTIONS) are the model card, the training data's datasheets, fairness by
group, the explanation's importance, the gate decisions (each with its own signature and every rule's
parameters from the policy revision it was evaluated under), the promotion requests with their
reviews, the provenance (PROV-JSON and the graph's nodes and edges), the audit events (each with its
previous hash and hash) and the charts drawn from them (SVG). `sections` holds the SHA-256 of each
section's canonical JSON, inside the signed report, so a verifier names the section that was edited.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.utils import timezone

from core import signing
from core.audit import event_document
from core.canonical_json import canonical_bytes, normalise
from core.models import AuditEvent
from explain.evidence import Estimate, Explanation, FairnessAssessment
from explain.selectors import latest_explanation, latest_fairness_assessments
from governance import datasheets
from governance.models import Datasheet, DatasheetKind, GateDecision, ModelVersion, Policy
from governance.reports.charts import report_charts
from governance.selectors import datasheet_view, version_promotion_requests
from lineage import exports
from lineage.kinds import EdgeKind
from lineage.models import Edge, Node
from lineage.stores import get_graph_store
from lineage.stores.base import Subgraph

REPORT_KIND = "mlgov.model-version-report"
REPORT_FORMAT = 2
SECTIONS = (
    "model_card",
    "datasheets",
    "fairness",
    "explanation",
    "gate_decisions",
    "promotion_requests",
    "provenance",
    "provenance_graph",
    "audit_events",
    "charts",
)
IMPORTANCE_TOP = 15  # features listed and drawn in the importance chart


def section_digest(value: Any) -> str:
    """SHA-256 of a section's canonical JSON (what `sections` holds and `mlgov verify-report` checks)."""
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def bundle(version: ModelVersion) -> dict[str, Any]:
    """The signed report of `version`: `{"report", "signature", "algorithm", "key_id"}`."""
    workspace = version.registered_model.workspace
    graph = get_graph_store(workspace).provenance(version.node_id)
    training = list(
        Node.objects.filter(
            pk__in=Edge.objects.filter(src_id=version.node_id, kind=EdgeKind.TRAINED_ON).values("dst_id")
        ).order_by("key")
    )
    decisions = _gate_decisions(version)
    report: dict[str, Any] = {
        "kind": REPORT_KIND,
        "format": REPORT_FORMAT,
        "workspace": workspace.slug,
        "model": version.registered_model.name,
        "version": version.version,
        "stage": version.stage,
        "artifact_sha256": version.artifact.sha256,
        "generated_at": timezone.now().isoformat(),
        "key_id": signing.key_id(),
        "model_card": _model_card(version),
        "datasheets": [_datasheet(node) for node in training],
        "fairness": [_fairness(a) for a in latest_fairness_assessments(model_node=version.node)],
        "explanation": _explanation(latest_explanation(model_node=version.node)),
        "gate_decisions": decisions,
        "promotion_requests": _promotion_requests(version),
        "provenance": exports.prov_json(workspace=workspace, root=version.node, subgraph=graph),
        "provenance_graph": _graph(graph),
        "audit_events": _audit_events(version, training, decisions),
    }
    report = normalise(report)
    report["charts"] = report_charts(report)
    report["sections"] = {name: section_digest(report[name]) for name in SECTIONS}
    return {
        "report": report,
        "signature": signing.sign(report),
        "algorithm": "Ed25519",
        "key_id": report["key_id"],
    }


def _user(user: Any) -> str:
    return user.get_username() if user is not None else ""


# --- model card and datasheets ------------------------------------------------------------------------


def _field_text(value: Any) -> str:
    """A datasheet field as a reader reads it: lists one item a line, objects `key: value`."""
    if isinstance(value, list):
        return "\n".join(_field_text(item) for item in value)
    if isinstance(value, dict):
        return "\n".join(f"{key}: {_inline(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _inline(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_inline(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key} {_inline(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _sheet(sheet: Datasheet) -> dict[str, Any]:
    """The newest revision's text section by section (the author's, with empty fields filled from
    evidence as the dashboard shows it), its completeness, and every revision with the sections it
    changed."""
    view = datasheet_view(sheet=sheet)
    content, completeness = view["content"], view["completeness"]
    sections = []
    for name, fields in datasheets.SECTIONS[sheet.kind].items():
        values = content.get(name) or {}
        info = completeness["sections"][name]
        sections.append(
            {
                "name": name,
                "title": _label(name),
                "fields": [
                    {"name": field, "label": _label(field), "text": _field_text(values[field])}
                    for field in fields
                    if _field_text(values.get(field)).strip()
                ],
                "filled": info["filled"],
                "of": info["fields"],
                "missing": info["missing"],
                "filled_from": info["filled_from"],
                "note": view["notes"].get(name, ""),
            }
        )
    history = list(
        Datasheet.objects.filter(subject_id=sheet.subject_id, kind=sheet.kind)
        .select_related("created_by")
        .order_by("revision")
    )
    revisions = []
    previous: dict[str, Any] = {}
    for revision in history:
        names = sorted(set(previous) | set(revision.content))
        revisions.append(
            {
                "revision": revision.revision,
                "created_at": revision.created_at.isoformat(),
                "created_by": _user(revision.created_by),
                "changed": [n for n in names if previous.get(n) != revision.content.get(n)],
            }
        )
        previous = revision.content
    return {
        "kind": sheet.kind,
        "subject": sheet.subject.key,
        "revision": sheet.revision,
        "created_at": sheet.created_at.isoformat(),
        "created_by": _user(sheet.created_by),
        "completeness": completeness["overall"],
        "sections": sections,
        "notes": str(content.get("notes") or ""),
        "revisions": revisions,
    }


def _model_card(version: ModelVersion) -> dict[str, Any] | None:
    card = (
        Datasheet.objects.filter(subject_id=version.node_id, kind=DatasheetKind.MODEL_CARD)
        .select_related("subject", "created_by")
        .first()
    )
    return _sheet(card) if card is not None else None


def _datasheet(node: Node) -> dict[str, Any]:
    """The training dataset's newest datasheet; only its subject when it has none."""
    sheet = (
        Datasheet.objects.filter(subject=node, kind=DatasheetKind.DATASET)
        .select_related("subject", "created_by")
        .first()
    )
    if sheet is None:
        return {"kind": DatasheetKind.DATASET.value, "subject": node.key, "revision": None}
    return _sheet(sheet)


# --- fairness and explanation -------------------------------------------------------------------------


def _estimate(estimate: Estimate | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    found: dict[str, Any] = {"value": estimate.value, "low": estimate.low, "high": estimate.high}
    if estimate.undefined:
        found["undefined"] = estimate.undefined
    if estimate.interval_note:
        found["note"] = estimate.interval_note
    return found


def _fairness(assessment: FairnessAssessment) -> dict[str, Any]:
    """Each group (size, positives, every metric with its interval and its difference to the reference
    group), the disparities, the groups left out and the data it ran on."""
    metric = assessment.headline_metric
    groups = []
    for group in assessment.groups:
        versus = group.versus_reference or {}
        groups.append(
            {
                "group": group.label,
                "size": group.size,
                "positives": group.positives,
                "eligible": group.eligible,
                "reference": group.is_reference,
                "metric": _estimate(group.metrics.get(metric)),
                "difference": _estimate(versus[metric].difference) if metric in versus else None,
                "metrics": {name: _estimate(e) for name, e in group.metrics.items()},
                "differences": {name: _estimate(c.difference) for name, c in versus.items()},
            }
        )
    data = assessment.data
    boot = assessment.bootstrap
    return {
        "job": assessment.job_id,
        "dataset": assessment.dataset,
        "task": assessment.task,
        "sensitive_features": list(assessment.sensitive_features),
        "rows": assessment.rows,
        "metric": metric,
        "reference": assessment.reference,
        "min_group_size": assessment.min_group_size,
        "bootstrap": (
            {"resamples": boot.resamples, "level": boot.level, "seed": boot.seed, "method": boot.method}
            if boot
            else None
        ),
        "groups": groups,
        "disparities": [{"name": name, **(_estimate(e) or {})} for name, e in assessment.disparities.items()],
        "excluded": [{"group": g, "size": n, "reason": why} for g, n, why in assessment.excluded],
        "data": (
            {
                "dataset": data.dataset,
                "artifact": data.artifact,
                "sha256": data.sha256,
                "training": list(data.training),
                "overlap_rows": data.overlap_rows,
                "rows": data.rows,
                "notes": list(data.notes),
            }
            if data
            else None
        ),
        "warnings": list(assessment.warnings),
    }


def _explanation(explanation: Explanation | None) -> dict[str, Any] | None:
    """The explanation's global importance for the output it plots: mean |SHAP| of the top features."""
    if explanation is None:
        return None
    output = explanation.plot_output

    def mean_abs(feature: str) -> float | None:
        values = explanation.importance.get(feature) or ()
        return values[output] if output < len(values) else None

    top = explanation.top(IMPORTANCE_TOP)
    return {
        "job": explanation.job_id,
        "dataset": explanation.dataset,
        "backend": explanation.backend,
        "backend_detail": explanation.backend_detail,
        "rows": explanation.rows,
        "features": len(explanation.features) or len(explanation.top_features),
        "output": (
            explanation.output_names[output] if output < len(explanation.output_names) else str(output)
        ),
        "additivity_residual": explanation.additivity_residual,
        "top_features": list(top),
        "importance": [
            {"feature": feature, "mean_abs_shap": mean_abs(feature)}
            for feature in top
            if mean_abs(feature) is not None
        ],
    }


# --- decisions, requests and reviews ------------------------------------------------------------------


def _rule_id(rule: dict[str, Any], index: int) -> str:
    """A rule's id as the gate names it (`governance.gates.evaluate`)."""
    return rule.get("id") or f"{rule['type']}-{index + 1}"


def _gate_decisions(version: ModelVersion) -> list[dict[str, Any]]:
    """Each decision as signed, with each rule's parameters (its thresholds) from the policy revision
    the decision names: what the rule was asked to check, beside what it found."""
    decisions = list(GateDecision.objects.filter(model_version=version).order_by("created_at"))
    wanted = {
        (rule["policy"], rule["policy_revision"])
        for d in decisions
        for rule in d.statement["rules"]
        if rule.get("policy_revision") is not None
    }
    names = {name for name, _ in wanted}
    policies = {
        (p.name, p.revision): p.document
        for p in Policy.objects.filter(workspace=version.registered_model.workspace, name__in=names)
        if (p.name, p.revision) in wanted
    }
    found = []
    for decision in decisions:
        parameters = []
        for rule in decision.statement["rules"]:
            document = policies.get((rule["policy"], rule.get("policy_revision")))
            written = (
                next(
                    (r for i, r in enumerate(document["rules"]) if _rule_id(r, i) == rule["rule"]),
                    None,
                )
                if document
                else None
            )
            parameters.append(
                {
                    "policy": rule["policy"],
                    "policy_revision": rule.get("policy_revision"),
                    "rule": rule["rule"],
                    "parameters": (
                        {k: v for k, v in written.items() if k not in ("id", "type")}
                        if written is not None
                        else None
                    ),
                }
            )
        found.append(
            {
                "statement": decision.statement,
                "signature": decision.signature,
                "key_id": decision.key_id,
                "rules": parameters,
            }
        )
    return found


def _promotion_requests(version: ModelVersion) -> list[dict[str, Any]]:
    """The version's promotion requests, oldest first, each with its reviews in order."""
    requests = version_promotion_requests(
        workspace=version.registered_model.workspace,
        name=version.registered_model.name,
        version=version.version,
    )
    return [
        {
            "id": str(request.pk),
            "stage": request.stage,
            "state": request.state,
            "requested_by": _user(request.requested_by),
            "created_at": request.created_at.isoformat(),
            "closed_at": request.closed_at.isoformat() if request.closed_at else None,
            "comment": request.comment,
            "decision": str(request.decision_id) if request.decision_id else None,
            "reviews": [
                {
                    "reviewer": _user(review.reviewer),
                    "role": review.role,
                    "time": review.created_at.isoformat(),
                    "decision": "approve" if review.approve else "reject",
                    "comment": review.comment,
                }
                for review in sorted(request.reviews.all(), key=lambda r: r.created_at)
            ],
        }
        for request in sorted(requests, key=lambda r: r.created_at)
    ]


# --- provenance and audit -----------------------------------------------------------------------------


def _graph(graph: Subgraph) -> dict[str, Any]:
    """The provenance graph's nodes and directed edges (`from --KIND--> to`, by node key)."""
    nodes = sorted(graph.nodes, key=lambda n: (n.depth or 0, n.kind, n.key))
    keys = {n.id: n.key for n in nodes}
    edges = sorted(
        (e for e in graph.edges if e.src in keys and e.dst in keys),
        key=lambda e: (keys[e.src], e.kind, keys[e.dst]),
    )
    return {
        "root": graph.root,
        "truncated": graph.truncated,
        "nodes": [{"id": n.id, "kind": n.kind, "key": n.key, "depth": n.depth or 0} for n in nodes],
        "edges": [
            {"src": e.src, "dst": e.dst, "kind": e.kind, "from": keys[e.src], "to": keys[e.dst]}
            for e in edges
        ],
    }


def _audit_events(
    version: ModelVersion, training: list[Node], decisions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The events about the version, its model card, its training data's datasheets and the policies
    its decisions were made under: each with the fields its hash covers, its previous hash and hash."""
    key = str(version)
    targets = {f"model:{key}", f"model_card:{key}"}
    targets |= {f"datasheet:{node.key}" for node in training}
    targets |= {f"policy:{rule['policy']}" for d in decisions for rule in d["rules"] if rule["parameters"]}
    events = AuditEvent.objects.filter(workspace=version.registered_model.workspace, target__in=targets)
    return [
        {"document": event_document(e), "prev_hash": e.prev_hash, "hash": e.hash}
        for e in events.order_by("seq")
    ]
