"""Gate evaluation: every rule of the active policies for a stage, each with pass/fail, its reason and
its evidence, and the per-process cache of evaluations keyed by the workspace's evidence sequence
(docs/decisions/0005-gate-evaluation-cache.md). Reads only: signing, storing and auditing a decision
is `services.gate_check`."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any
from uuid import UUID

from core.models import Workspace
from governance import checks
from governance.models import GateDecision, ModelVersion, Policy, PromotionRequest, RequestState
from governance.scoping import applies


def policies_for(workspace: Workspace, stage: str) -> list[Policy]:
    """The workspace's active policies that cover `stage`."""
    return [p for p in Policy.objects.filter(workspace=workspace, active=True) if stage in p.stages]


def evaluate(version: ModelVersion, stage: str, request: PromotionRequest | None = None) -> dict[str, Any]:
    """Every rule of the policies covering the stage, with pass/fail, reason and evidence (no writes).
    A rule whose policy (or itself) does not govern this model (`applies_to`) is listed as not
    applicable (`passed` null); the gate fails closed when no rule applies at all."""
    ctx = checks.Context(version, stage, request)
    model = version.registered_model
    rules = []
    policies = policies_for(model.workspace, stage)
    for policy in policies:
        policy_applies, policy_why = applies(policy.document.get("applies_to"), model)
        for index, rule in enumerate(policy.document["rules"]):
            entry: dict[str, Any] = {
                "policy": policy.name,
                "policy_revision": policy.revision,
                "rule": rule.get("id") or f"{rule['type']}-{index + 1}",
                "type": rule["type"],
            }
            rule_applies, rule_why = applies(rule.get("applies_to"), model)
            if not (policy_applies and rule_applies):
                why = policy_why if not policy_applies else rule_why
                rules.append(
                    {
                        **entry,
                        "applicable": False,
                        "passed": None,
                        "reason": f"not applicable: {why}",
                        "evidence": {},
                    }
                )
                continue
            check = checks.REGISTRY[rule["type"]]({k: v for k, v in rule.items() if k != "applies_to"})
            try:
                outcome = check.evaluate(ctx)
            except Exception as error:  # a broken check fails closed, and says so
                outcome = checks.Outcome(False, f"the check could not run: {type(error).__name__}: {error}")
            rules.append(
                {
                    **entry,
                    "applicable": True,
                    "passed": outcome.passed,
                    "reason": outcome.reason,
                    "evidence": outcome.evidence,
                }
            )
    applicable = [r for r in rules if r["applicable"]]
    if not applicable:  # fail closed: a gate with nothing to check says no, and why
        reason = (
            f"no rule of the active policies covering the stage {str(stage)!r} applies to {model.name!r}: "
            "scope a policy to it (applies_to) or add one that governs it"
            if policies
            else f"no active policy covers the stage {str(stage)!r}: upload one that lists it"
        )
        rules.append(
            {
                "policy": "gate",
                "policy_revision": None,
                "rule": "policy-coverage",
                "type": "policy_coverage",
                "applicable": True,
                "passed": False,
                "reason": reason,
                "evidence": {},
            }
        )
    return {
        "passed": all(r["passed"] for r in rules if r["applicable"]),
        "rules": rules,
        "policies": [{"name": p.name, "revision": p.revision} for p in policies],
    }


_EVALUATIONS: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_EVALUATIONS_LOCK = threading.Lock()
EVALUATION_CACHE_SIZE = 1024


def evaluate_at(
    version: ModelVersion,
    stage: str,
    request_id: UUID | None,
    evidence_seq: int,
    *,
    remember: bool = True,
) -> dict[str, Any]:
    """`evaluate`, remembered per process for the workspace's evidence sequence: every change a rule
    can read writes an audit event, which moves Workspace.evidence_seq, so a result computed at the
    same sequence (same version, stage and request) is the same result. The request (by id) is
    only read when the result is not remembered. A caller that evaluates without holding the chain
    head passes remember=False and calls `evaluation_remember` once the sequence is confirmed."""
    key = (version.registered_model.workspace_id, version.pk, stage, request_id, evidence_seq)
    with _EVALUATIONS_LOCK:
        found = _EVALUATIONS.get(key)
        if found is not None:
            _EVALUATIONS.move_to_end(key)
            return found
    request = PromotionRequest.objects.get(pk=request_id) if request_id is not None else None
    result = evaluate(version, stage, request)
    if remember:
        evaluation_remember(version, stage, request_id, evidence_seq, result)
    return result


def evaluation_remember(
    version: ModelVersion, stage: str, request_id: UUID | None, evidence_seq: int, result: dict[str, Any]
) -> None:
    """Remember `result` as the evaluation at `evidence_seq` (see evaluate_at)."""
    key = (version.registered_model.workspace_id, version.pk, stage, request_id, evidence_seq)
    with _EVALUATIONS_LOCK:
        _EVALUATIONS[key] = result
        _EVALUATIONS.move_to_end(key)
        while len(_EVALUATIONS) > EVALUATION_CACHE_SIZE:
            _EVALUATIONS.popitem(last=False)


def gate_request_id(version: ModelVersion, stage: str) -> UUID | None:
    """The request whose reviews the gate counts: the open one for (version, stage), or, for a version
    already in `stage`, the completed request that moved it there (a deploy after the approval
    passes on those approvals; a version moved out of the stage needs a new request)."""
    # At most one request is open per (version, stage); no ordering to compile or sort.
    requests = PromotionRequest.objects.filter(model_version=version, stage=stage)
    open_ids = list(requests.filter(state=RequestState.OPEN).order_by().values_list("pk", flat=True)[:1])
    if open_ids:
        return open_ids[0]
    if version.stage != stage:
        return None
    return (
        requests.filter(state=RequestState.COMPLETED)
        .order_by("-closed_at")
        .values_list("pk", flat=True)
        .first()
    )


def decision_document(decision: GateDecision) -> dict[str, Any]:
    """The signed decision as it is served and saved: verify `signature` over `statement`."""
    return {
        "statement": decision.statement,
        "signature": decision.signature,
        "key_id": decision.key_id,
        "algorithm": "Ed25519",
    }
