"""Policy check types. Each is one small class: a JSON Schema for its parameters (checked when the
policy is uploaded) and an `evaluate` that returns pass/fail with its reason and evidence.

To add a check type, subclass Check, set `type` and `params`, implement `evaluate`, and decorate it
with @register.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.db.models import Q

from core.roles import Role
from explain.evidence import DISPARITY_METRICS, Explanation, FairnessAssessment
from explain.selectors import fairness_assessments_of, latest_explanation
from governance.models import Datasheet, DatasheetKind, PromotionRequest, RequestState, Stage
from lineage.kinds import NodeKind
from lineage.models import Edge, Node
from lineage.stores import get_graph_store
from privacy.models import PrivacyBudget

REGISTRY: dict[str, type[Check]] = {}


@dataclass
class Outcome:
    passed: bool
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


class Context:
    """What a gate evaluation knows, with each lookup made once per evaluation."""

    def __init__(self, version, stage: str, request=None):
        self.version = version  # governance.models.ModelVersion
        self.stage = stage
        self.request = request  # the open PromotionRequest for this stage, if any
        self.workspace = version.registered_model.workspace

    @functools.cached_property
    def upstream(self):
        return get_graph_store(self.workspace).upstream(self.version.node_id, depth=10)

    @functools.cached_property
    def upstream_kinds(self) -> set[str]:
        return {n.kind for n in self.upstream.nodes if n.id != self.version.node_id}

    @functools.cached_property
    def training_datasets(self) -> list:
        ids = Edge.objects.filter(src_id=self.version.node_id, kind="TRAINED_ON").values_list(
            "dst_id", flat=True
        )
        return list(Node.objects.filter(pk__in=list(ids)).order_by("key"))

    @functools.cached_property
    def fairness_assessments(self) -> list[FairnessAssessment]:
        """The version's newest fairness assessments (read once, whatever the number of rules)."""
        return fairness_assessments_of(model_node=self.version.node)

    def fairness_assessment(self, sensitive_feature: str) -> FairnessAssessment | None:
        """The newest assessment whose groups are formed by `sensitive_feature`."""
        return next((a for a in self.fairness_assessments if a.covers(sensitive_feature)), None)

    @functools.cached_property
    def explanation(self) -> Explanation | None:
        return latest_explanation(model_node=self.version.node)

    @functools.cached_property
    def model_card(self):
        return Datasheet.objects.filter(
            subject_id=self.version.node_id, kind=DatasheetKind.MODEL_CARD
        ).first()


def register(cls: type[Check]) -> type[Check]:
    REGISTRY[cls.type] = cls
    return cls


class Check:
    type: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[dict[str, Any]] = {}  # JSON Schema properties of the rule's parameters
    required: ClassVar[list[str]] = []

    @classmethod
    def schema(cls) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", *cls.required],
            "properties": {
                "type": {"const": cls.type},
                "id": {"type": "string", "maxLength": 100},
                "description": {"type": "string", "maxLength": 1000},
                **cls.params,
            },
        }

    def __init__(self, rule: dict[str, Any]):
        self.rule = rule

    def evaluate(self, ctx: Context) -> Outcome:
        raise NotImplementedError


@register
class DatasheetComplete(Check):
    type = "datasheet_complete"
    description = "the model card is complete (or has the named sections complete)"
    params = {
        "sections": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "min_completeness": {"type": "number", "minimum": 0, "maximum": 1},
    }

    def evaluate(self, ctx: Context) -> Outcome:
        from governance.selectors import datasheet_view  # noqa: PLC0415 - a cycle: the selectors import checks

        if ctx.model_card is None:
            return Outcome(False, "the model version has no model card")
        view = datasheet_view(sheet=ctx.model_card)
        report = view["completeness"]
        wanted = self.rule.get("sections") or list(report["sections"])
        unknown = [s for s in wanted if s not in report["sections"]]
        if unknown:
            return Outcome(False, f"the model card has no section {', '.join(unknown)}")
        threshold = float(self.rule.get("min_completeness", 1.0))
        short = {
            s: report["sections"][s]["missing"]
            for s in wanted
            if report["sections"][s]["completeness"] < threshold
        }
        evidence = {
            "revision": ctx.model_card.revision,
            "overall": report["overall"],
            "sections": {s: report["sections"][s]["completeness"] for s in wanted},
        }
        if short:
            detail = "; ".join(f"{s} (missing {', '.join(m)})" for s, m in short.items())
            return Outcome(False, f"incomplete model card sections: {detail}", evidence)
        return Outcome(True, f"{len(wanted)} model card sections at least {threshold:.0%} complete", evidence)


@register
class MetricThreshold(Check):
    type = "metric_threshold"
    description = "a metric recorded with the version is within a bound"
    params = {
        "metric": {"type": "string", "minLength": 1},
        "min": {"type": "number"},
        "max": {"type": "number"},
    }
    required = ["metric"]

    def evaluate(self, ctx: Context) -> Outcome:
        name = self.rule["metric"]
        value = ctx.version.metrics.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return Outcome(
                False, f"the version records no numeric metric {name!r}", {"metrics": ctx.version.metrics}
            )
        low, high = self.rule.get("min"), self.rule.get("max")
        evidence = {"metric": name, "value": value, "min": low, "max": high}
        if low is not None and value < low:
            return Outcome(False, f"{name} is {value:g}, below the minimum {low:g}", evidence)
        if high is not None and value > high:
            return Outcome(False, f"{name} is {value:g}, above the maximum {high:g}", evidence)
        return Outcome(True, f"{name} is {value:g}", evidence)


@register
class FairnessBound(Check):
    type = "fairness_bound"
    description = "a fairness disparity for a sensitive feature is within a bound"
    params = {
        "metric": {"enum": list(DISPARITY_METRICS)},
        "sensitive_feature": {"type": "string", "minLength": 1},
        "max": {"type": "number"},
        "min": {"type": "number"},
        "use_interval": {"type": "boolean"},
        # the share of the evaluation rows that may also be training rows (0: the data must be disjoint)
        "max_training_overlap": {"type": "number", "minimum": 0, "maximum": 1},
    }
    required = ["metric", "sensitive_feature"]

    def evaluate(self, ctx: Context) -> Outcome:
        feature, metric = self.rule["sensitive_feature"], self.rule["metric"]
        assessment = ctx.fairness_assessment(feature)
        if assessment is None:
            return Outcome(False, f"no fairness assessment of this version covers {feature!r}")
        measured = assessment.disparity(metric)
        if measured is None:
            return Outcome(
                False,
                f"the {assessment.task} assessment does not measure {metric}",
                {"job": assessment.job_id},
            )
        if measured.value is None:
            return Outcome(
                False,
                f"the assessment could not measure {metric} (too few groups)",
                {"job": assessment.job_id},
            )
        evidence = {
            "job": assessment.job_id,
            "metric": metric,
            "value": measured.value,
            "low": measured.low,
            "high": measured.high,
            "sensitive_features": list(assessment.sensitive_features),
            **data_evidence(assessment),
        }
        if "max_training_overlap" in self.rule:
            refusal = overlap_refusal(assessment, self.rule["max_training_overlap"])
            if refusal:
                return Outcome(False, refusal, evidence)
        # With `use_interval`, the bound holds for the whole interval (where one was computed).
        interval = self.rule.get("use_interval", False)
        upper = measured.high if interval and measured.high is not None else measured.value
        lower = measured.low if interval and measured.low is not None else measured.value
        if "max" in self.rule and upper > self.rule["max"]:
            return Outcome(
                False, f"{metric} for {feature} is {upper:.4g}, above {self.rule['max']:g}", evidence
            )
        if "min" in self.rule and lower < self.rule["min"]:
            return Outcome(
                False, f"{metric} for {feature} is {lower:.4g}, below {self.rule['min']:g}", evidence
            )
        return Outcome(True, f"{metric} for {feature} is {measured.value:.4g}", evidence)


def data_evidence(assessment: FairnessAssessment) -> dict[str, Any]:
    """What a fairness rule's evidence says of the data: the dataset version and the SHA-256 of the
    file the assessment ran on, and how many of its rows are training rows."""
    data = assessment.data
    if data is None:
        return {"dataset": assessment.dataset}
    return {
        "dataset": data.dataset,
        "dataset_sha256": data.sha256,
        "training_data": list(data.training),
        "training_overlap_rows": data.overlap_rows,
        "evaluation_rows": data.rows,
    }


def overlap_refusal(assessment: FairnessAssessment, allowed: float) -> str:
    """Why the assessment's data is not disjoint enough from the training data ('' when it is)."""
    data = assessment.data
    if data is None or data.overlap_rows is None:
        why = (
            "; ".join(data.notes)
            if data is not None and data.notes
            else "the assessment recorded no comparison"
        )
        return f"the evaluation data cannot be shown disjoint from the training data: {why}"
    fraction = data.overlap_fraction or 0.0
    if fraction > allowed:
        return (
            f"{data.overlap_rows:,} of the {data.rows:,} evaluation rows of {data.dataset} are training rows "
            f"({fraction:.2%}; at most {allowed:.2%} allowed)"
        )
    return ""


@register
class EvaluationDisjoint(Check):
    type = "evaluation_disjoint"
    description = "the fairness assessments ran on data kept apart from the model's training data"
    params = {
        "max_overlap": {"type": "number", "minimum": 0, "maximum": 1},
        "sensitive_feature": {"type": "string", "minLength": 1},
    }

    def evaluate(self, ctx: Context) -> Outcome:
        feature = self.rule.get("sensitive_feature")
        if feature:
            assessments = [a for a in [ctx.fairness_assessment(feature)] if a is not None]
        else:  # the newest for each set of sensitive features: what the gate's fairness rules read
            latest: dict[tuple[str, ...], FairnessAssessment] = {}
            for assessment in ctx.fairness_assessments:
                latest.setdefault(assessment.sensitive_features, assessment)
            assessments = list(latest.values())
        if not assessments:
            return Outcome(False, "no fairness assessment of this version to check")
        allowed = self.rule.get("max_overlap", 0.0)
        evidence = {"assessments": [{"job": a.job_id, **data_evidence(a)} for a in assessments]}
        refusals = [refusal for a in assessments if (refusal := overlap_refusal(a, allowed))]
        if refusals:
            return Outcome(False, "; ".join(refusals), evidence)
        overlap = sum(a.data.overlap_rows or 0 for a in assessments if a.data is not None)
        rows = sum(a.data.rows for a in assessments if a.data is not None)
        return Outcome(
            True,
            f"{overlap:,} of {rows:,} evaluation rows are training rows (at most {allowed:.2%} allowed)",
            evidence,
        )


@register
class ExplanationPresent(Check):
    type = "explanation_present"
    description = "an explanation exists; optionally its top features avoid listed sensitive features"
    params = {
        "forbidden_top_features": {"type": "array", "items": {"type": "string"}},
        "top_k": {"type": "integer", "minimum": 1, "maximum": 100},
    }

    def evaluate(self, ctx: Context) -> Outcome:
        explanation = ctx.explanation
        if explanation is None:
            return Outcome(False, "the model version has no explanation")
        top = explanation.top(self.rule.get("top_k", 5))
        evidence = {"job": explanation.job_id, "top_features": list(top), "backend": explanation.backend}
        forbidden = self.rule.get("forbidden_top_features", [])
        bad = [f for f in forbidden if f in top]
        if bad:
            return Outcome(
                False, f"sensitive feature(s) among the top {len(top)}: {', '.join(bad)}", evidence
            )
        avoided = f"; none of {', '.join(forbidden)} among the top {len(top)}" if forbidden else ""
        return Outcome(True, "an explanation exists" + avoided, evidence)


@register
class LineageContains(Check):
    type = "lineage_contains"
    description = "the version's provenance holds the required kinds of node"
    params = {
        "kinds": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": [k.value for k in NodeKind]},
        }
    }
    required = ["kinds"]

    def evaluate(self, ctx: Context) -> Outcome:
        present = ctx.upstream_kinds
        missing = [k for k in self.rule["kinds"] if k not in present]
        evidence = {"present": sorted(present), "required": self.rule["kinds"]}
        if missing:
            return Outcome(
                False, f"the lineage has no {', '.join(missing)} upstream of the version", evidence
            )
        return Outcome(True, f"the lineage holds {', '.join(self.rule['kinds'])}", evidence)


@register
class Approvals(Check):
    type = "approvals"
    description = "N distinct reviewers of a role, none of them the version's author, approved"
    params = {
        "count": {"type": "integer", "minimum": 1, "maximum": 20},
        "role": {"enum": [r.value for r in Role]},
    }
    required = ["count"]

    def evaluate(self, ctx: Context) -> Outcome:
        needed = self.rule["count"]
        if ctx.request is None:
            return Outcome(
                False, f"needs {needed} approval(s): there is no open promotion request", {"approvals": 0}
            )
        reviews = ctx.request.reviews.filter(approve=True).exclude(reviewer_id=ctx.version.author_id)
        if ctx.request.requested_by_id:
            reviews = reviews.exclude(reviewer_id=ctx.request.requested_by_id)
        if self.rule.get("role"):
            reviews = reviews.filter(Q(role=self.rule["role"]) | Q(role=Role.ADMIN))
        approvers = sorted({r.reviewer.get_username() for r in reviews.select_related("reviewer")})
        evidence = {
            "approvers": approvers,
            "needed": needed,
            "role": self.rule.get("role"),
            "request": str(ctx.request.pk),
            "request_state": ctx.request.state,
        }
        if len(approvers) < needed:
            return Outcome(False, f"{len(approvers)} of {needed} required approvals", evidence)
        return Outcome(True, f"approved by {', '.join(approvers)}", evidence)


@register
class PassedThrough(Check):
    type = "passed_through"
    description = "the version has been promoted to each named stage before (e.g. staging before production)"
    params = {
        "stages": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": [s.value for s in Stage if s not in (Stage.NONE, Stage.ARCHIVED)]},
        }
    }
    required = ["stages"]

    def evaluate(self, ctx: Context) -> Outcome:
        entered = {
            stage: str(pk)
            for stage, pk in PromotionRequest.objects.filter(
                model_version=ctx.version, state=RequestState.COMPLETED, stage__in=self.rule["stages"]
            )
            .order_by("closed_at")
            .values_list("stage", "pk")
        }
        missing = [stage for stage in self.rule["stages"] if stage not in entered]
        evidence = {"entered_by_request": entered, "missing": missing}
        if missing:
            return Outcome(False, f"it has not been promoted to {', '.join(missing)} before", evidence)
        return Outcome(True, f"it was promoted to {', '.join(self.rule['stages'])} before", evidence)


@register
class DpBudgetNotExhausted(Check):
    type = "dp_budget_not_exhausted"
    description = "the privacy budgets of the training datasets are not exhausted"
    params = {"min_epsilon_left": {"type": "number", "minimum": 0}, "require_budget": {"type": "boolean"}}

    def evaluate(self, ctx: Context) -> Outcome:
        datasets = ctx.training_datasets
        if not datasets:
            return Outcome(False, "no training dataset is recorded (TRAINED_ON) for the version")
        minimum = float(self.rule.get("min_epsilon_left", 0.0))
        budgets = {b.dataset_node_id: b for b in PrivacyBudget.objects.filter(dataset_node__in=datasets)}
        evidence: dict[str, Any] = {}
        problems: list[str] = []
        for node in datasets:
            budget = budgets.get(node.pk)
            if budget is None:
                evidence[node.key] = None
                if self.rule.get("require_budget", False):
                    problems.append(f"{node.key} has no privacy budget")
                continue
            evidence[node.key] = {
                "epsilon_total": budget.epsilon_total,
                "epsilon_spent": budget.epsilon_spent,
            }
            if budget.epsilon_left <= minimum:
                problems.append(
                    f"{node.key} has epsilon {budget.epsilon_left:g} left (needs more than {minimum:g})"
                )
        if problems:
            return Outcome(False, "; ".join(problems), evidence)
        return Outcome(True, f"budgets of {len(datasets)} training dataset(s) not exhausted", evidence)
