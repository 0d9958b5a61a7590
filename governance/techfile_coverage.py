"""The technical file's coverage matrix: which of its evidence supports which ISO/IEC 42001:2023 Annex A
control and which NIST AI RMF 1.0 subcategory, and the gaps, each with what would close it.

The matrix is drawn from the file alone: the kinds of evidence it cites (`evidence_kinds`, from the
evidence ids and documents), its classification, and the sections people wrote in full. A control is
supported when the file holds any of the evidence kinds listed for it. This says where evidence
exists, not that a control is effective: that is the auditor's judgement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ISO, NIST = "ISO/IEC 42001 Annex A", "NIST AI RMF"

# (framework, control, title, evidence kinds any of which supports it, what is needed otherwise)
CONTROLS: tuple[tuple[str, str, str, tuple[str, ...], str], ...] = (
    (ISO, "A.3.2", "AI roles and responsibilities", ("owner",), "name the model's owner"),
    (ISO, "A.4.3", "Data resources", ("dataset", "datasheet"), "record the training data and its datasheet"),
    (ISO, "A.5.3", "Documentation of AI system impact assessments", ("annex_iv.risk_management",),
     "write the risk-management section"),
    (ISO, "A.5.4", "Assessing AI system impact on individuals or groups of individuals", ("fairness",),
     "run a fairness assessment"),
    (ISO, "A.6.2.2", "AI system requirements and specification", ("risk_classification",),
     "classify the model's risk"),
    (ISO, "A.6.2.3", "Documentation of AI system design and development", ("training_run", "provenance"),
     "record the training run in the lineage"),
    (ISO, "A.6.2.4", "AI system verification and validation", ("gate_decision",), "check the version's gate"),
    (ISO, "A.6.2.5", "AI system deployment", ("review",), "have the promotion reviewed"),
    (ISO, "A.6.2.6", "AI system operation and monitoring",
     ("annex_iv.monitoring_and_control", "annex_iv.post_market_monitoring"), "write the monitoring sections"),
    (ISO, "A.6.2.7", "AI system technical documentation", ("annex_iv.general_description", "model_card"),
     "write the general description or the model card"),
    (ISO, "A.6.2.8", "AI system recording of event logs", ("event_log",), "keep the audit log"),
    (ISO, "A.7.4", "Quality of data for AI systems", ("datasheet",), "write the training data's datasheet"),
    (ISO, "A.7.5", "Data provenance", ("provenance",), "record the data's lineage"),
    (ISO, "A.8.2", "System documentation and information for users", ("model_card",), "write a model card"),
    (ISO, "A.9.4", "Intended use of the AI system", ("intended_purpose",), "state the intended purpose"),
    (NIST, "GOVERN 1.6", "Mechanisms are in place to inventory AI systems", ("model_file",),
     "register the model"),
    (NIST, "GOVERN 2.1", "Roles, responsibilities and lines of communication are documented",
     ("owner", "review"), "name the owner or have the promotion reviewed"),
    (NIST, "MAP 1.1", "Intended purposes and context of use are understood and documented",
     ("intended_purpose",), "state the intended purpose"),
    (NIST, "MEASURE 2.1", "Test sets, metrics and details about the tools used in TEVV are documented",
     ("fairness", "gate_decision"), "run a fairness assessment or check the gate"),
    (NIST, "MEASURE 2.9", "The AI model is explained, validated and documented", ("explanation",),
     "compute an explanation"),
    (NIST, "MEASURE 2.10", "Privacy risk of the AI system is examined and documented", ("privacy",),
     "publish the training data's statistics with differential privacy"),
    (NIST, "MEASURE 2.11", "Fairness and bias are evaluated and results are documented", ("fairness",),
     "run a fairness assessment"),
    (NIST, "MANAGE 1.1", "A determination is made as to whether the AI system should proceed",
     ("review", "approval"), "have the promotion or this file approved"),
    (NIST, "MANAGE 4.1", "Post-deployment monitoring plans are implemented",
     ("annex_iv.post_market_monitoring",),
     "write the post-market monitoring plan"),
)  # fmt: skip

_PREFIXES = (
    ("artifact:model", "model_file"),
    ("dataset:", "dataset"),
    ("datasheet:dataset:", "datasheet"),
    ("datasheet:model_card:", "model_card"),
    ("provenance", "provenance"),
    ("decision:", "gate_decision"),
    ("run:", "training_run"),
    ("audit:head", "event_log"),
    ("privacy:", "privacy"),
)


def _kind(ident: str, document: Any) -> str | None:
    if ident.startswith("job:"):
        return "fairness" if isinstance(document, Mapping) and "groups" in document else "explanation"
    if ident.startswith("request:"):
        return "review" if isinstance(document, Mapping) and document.get("reviews") else None
    return next((kind for prefix, kind in _PREFIXES if ident.startswith(prefix)), None)


def evidence_kinds(techfile: Mapping[str, Any], evidence: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each kind of evidence the file holds, with the evidence ids (or fields) that are of it."""
    kinds: dict[str, list[str]] = {}
    for ident, document in evidence.items():
        kind = _kind(ident, document)
        if kind is not None:
            kinds.setdefault(kind, []).append(ident)
    classification = techfile.get("classification") or {}
    for field, kind in (("risk_tier", "risk_classification"), ("intended_purpose", "intended_purpose")):
        if classification.get(field):
            kinds[kind] = [f"classification.{field}"]
    if classification.get("owner"):
        kinds["owner"] = ["classification.owner"]
    for section in techfile.get("sections", []):
        for written in section.get("authored", []):
            if written["completeness"] >= 1:
                kinds[f"annex_iv.{written['section']}"] = [f"annex_iv.{written['section']}"]
    if any(a.get("current") for a in techfile.get("approvals", [])):
        kinds["approval"] = ["approvals"]
    return kinds


def coverage(techfile: Mapping[str, Any], evidence: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The matrix: one row per control, with the evidence that supports it (empty: a gap)."""
    kinds = evidence_kinds(techfile, evidence)
    rows = []
    for framework, control, title, wanted, needs in CONTROLS:
        found = sorted({ident for kind in wanted for ident in kinds.get(kind, [])})
        rows.append(
            {
                "framework": framework,
                "control": control,
                "title": title,
                "evidence": found[:6] + ([f"and {len(found) - 6} more"] if len(found) > 6 else []),
                "needs": "" if found else needs,
            }
        )
    return rows


def gaps(rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['framework']} {r['control']} ({r['title']}): {r['needs']}" for r in rows if not r["evidence"]
    ]
