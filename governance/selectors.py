"""Reads of the registry, datasheets, policies, gate decisions, promotion requests and reports. Every
selector takes the workspace: another workspace's rows are never found, exactly like missing ones."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery

from core.errors import NotFound
from core.models import Workspace
from explain.selectors import latest_fairness_assessment
from governance import datasheets
from governance.models import (
    Alias,
    Datasheet,
    DatasheetKind,
    GateDecision,
    ModelVersion,
    Policy,
    PromotionRequest,
    RegisteredModel,
    Report,
    RequestState,
    Review,
)
from lineage.kinds import EdgeKind, NodeKind
from lineage.models import Edge, Node
from privacy.selectors import latest_summary

# --- registry -----------------------------------------------------------------------------------------


def model_get(*, workspace: Workspace, name: str) -> RegisteredModel:
    """The registered model `name` in the workspace (NotFound otherwise)."""
    model = RegisteredModel.objects.filter(workspace=workspace, name=name).first()
    if model is None:
        raise NotFound(f"no registered model {name!r} in this workspace")
    return model


def model_list(*, workspace: Workspace) -> QuerySet[RegisteredModel]:
    """The workspace's models, each with its versions, their aliases and authors prefetched."""
    return RegisteredModel.objects.filter(workspace=workspace).prefetch_related(
        "versions__aliases", "versions__author"
    )


VERSION_RELATED = ("registered_model", "node", "author", "artifact")


def version_get(
    *, workspace: Workspace, name: str, version: str, related: tuple[str, ...] = VERSION_RELATED
) -> ModelVersion:
    """`name@version` (or `name@alias`) in the workspace, with the `related` rows joined in."""
    try:
        # get(), not first(): the lookup is unique, and first() would sort by the model's ordering.
        found = (
            ModelVersion.objects.select_related(*related)
            .filter(registered_model__workspace=workspace, registered_model__name=name)
            .get(version=version)
        )
    except ModelVersion.DoesNotExist:
        alias = Alias.objects.filter(
            registered_model__workspace=workspace, registered_model__name=name, name=version
        ).first()
        if alias is not None:
            return version_get(workspace=workspace, name=name, version=alias.version.version, related=related)
        raise NotFound(f"no registered version {name}@{version} in this workspace") from None
    if "registered_model" in related:
        found.registered_model.workspace = workspace  # the caller's row: no join, no second read
    return found


def version_list(*, workspace: Workspace, name: str) -> QuerySet[ModelVersion]:
    """The versions of the model `name` (NotFound when there is no such model)."""
    model = model_get(workspace=workspace, name=name)
    return model.versions.select_related("registered_model", "author").prefetch_related("aliases")


@dataclass(frozen=True)
class InventoryRow:
    """One version on the inventory page: its latest gate decision (and the rules that failed in it)
    and its open promotion requests."""

    version: ModelVersion
    decision: GateDecision | None
    failing: list[dict[str, Any]]
    open_requests: list[PromotionRequest]

    @property
    def model(self) -> RegisteredModel:
        """The version's registered model (joined in with the version)."""
        return self.version.registered_model


def model_inventory(
    *, workspace: Workspace, query: str = "", stage: str = "", risk_tier: str = ""
) -> list[InventoryRow]:
    """Every version whose model name contains `query` (and in `stage`, and of a model in
    `risk_tier`, "unset" for none, when given), in the models' order. Three queries however many
    versions: the versions (each with the id of its latest gate decision), those decisions, and the
    open requests."""
    latest = GateDecision.objects.filter(model_version=OuterRef("pk")).order_by("-created_at")
    versions = ModelVersion.objects.filter(registered_model__workspace=workspace).select_related(
        "registered_model"
    )
    if query:
        versions = versions.filter(registered_model__name__icontains=query)
    if stage:
        versions = versions.filter(stage=stage)
    if risk_tier:
        versions = versions.filter(registered_model__risk_tier="" if risk_tier == "unset" else risk_tier)
    found = list(versions.annotate(latest_decision_id=Subquery(latest.values("pk")[:1])))
    decisions = GateDecision.objects.in_bulk([v.latest_decision_id for v in found if v.latest_decision_id])
    open_requests: dict[int, list[PromotionRequest]] = defaultdict(list)
    for open_request in PromotionRequest.objects.filter(model_version__in=found, state=RequestState.OPEN):
        open_requests[open_request.model_version_id].append(open_request)
    rows = []
    for version in found:
        decision = decisions.get(version.latest_decision_id)
        rows.append(
            InventoryRow(
                version=version,
                decision=decision,
                failing=[r for r in decision.statement["rules"] if r["passed"] is False] if decision else [],
                open_requests=open_requests[version.pk],
            )
        )
    return rows


# --- datasheets ---------------------------------------------------------------------------------------


def datasheet_subject(*, workspace: Workspace, kind: str, name: str, version: str) -> Node:
    """The lineage node a datasheet describes: a registered version's for a model card and for its
    technical documentation, a dataset version's otherwise."""
    if kind in (DatasheetKind.MODEL_CARD, DatasheetKind.ANNEX_IV):
        return version_get(workspace=workspace, name=name, version=version).node
    node = Node.objects.filter(
        workspace=workspace, kind=NodeKind.DATASET_VERSION, key=f"{name}@{version}"
    ).first()
    if node is None:
        raise NotFound(f"no dataset version {name}@{version} in this workspace")
    return node


def datasheet_latest(*, workspace: Workspace, kind: str, name: str, version: str) -> Datasheet:
    """The newest revision of the `kind` datasheet of `name@version` (NotFound when there is none)."""
    subject = datasheet_subject(workspace=workspace, kind=kind, name=name, version=version)
    sheet = Datasheet.objects.filter(subject=subject, kind=kind).select_related("subject").first()
    if sheet is None:
        raise NotFound(f"no {kind.replace('_', ' ')} for {name}@{version} yet")
    return sheet


def evidence_for(*, sheet: Datasheet) -> dict[str, dict]:
    """Sections that evidence held by the service fills, each marked with its source."""
    evidence: dict[str, dict] = {}
    subject = sheet.subject
    if sheet.kind == DatasheetKind.MODEL_CARD:
        trained = Edge.objects.filter(src=subject, kind=EdgeKind.TRAINED_ON).select_related("dst")
        if trained:
            evidence["training_data"] = {"datasets": sorted(e.dst.key for e in trained), "source": "lineage"}
        assessed = Edge.objects.filter(dst=subject, kind=EdgeKind.ASSESSES).values_list("src_id", flat=True)
        evaluated = Edge.objects.filter(src_id__in=list(assessed), kind=EdgeKind.EVALUATED_ON).select_related(
            "dst"
        )
        if evaluated:
            evidence["evaluation_data"] = {
                "datasets": sorted({e.dst.key for e in evaluated}),
                "source": "lineage",
            }
        fairness = latest_fairness_assessment(model_node=subject)
        if fairness is not None:
            features = list(fairness.sensitive_features)
            key = "intersectional_results" if len(features) > 1 else "unitary_results"
            evidence["quantitative_analyses"] = {
                key: {
                    "sensitive_features": features,
                    "by_group": fairness.values_by_group(),
                    "disparities": fairness.disparity_values(),
                },
                "source": "fairness",
            }
    else:
        summary = latest_summary(subject)
        if summary is not None:
            statistics = {
                s["statistic"] + (f" of {s['column']}" if s["column"] else ""): s["value"]
                for s in summary["statistics"]
            }
            evidence["composition"] = {
                "count": statistics.get("count"),
                "instances": {k: v for k, v in statistics.items() if k != "count"},
                "source": "dp_summary",
                "note": _dp_note(summary),
            }
    return evidence


def _dp_note(summary: dict[str, Any]) -> str:
    """What a reader must know about numbers from a DP summary: they are noisy, how noisy each one
    is (95%), and whether a histogram was adjusted to its count."""
    text = (
        f"Noisy numbers: a differentially private summary (epsilon {summary['epsilon']:.3g} in all), "
        "not exact counts."
    )
    bounds = []
    for statistic in summary["statistics"]:
        half_width = (statistic.get("accuracy") or {}).get("half_width")
        if half_width is None:
            continue
        name = statistic["statistic"] + (f" of {statistic['column']}" if statistic["column"] else "")
        each = "each count of the " if statistic["statistic"] == "histogram" else "the "
        bounds.append(f"{each}{name} within ±{half_width:.4g}")
    if bounds:
        text += " With 95% probability the noise leaves " + "; ".join(bounds) + " of the true value."
    adjusted = [s["column"] for s in summary["statistics"] if s.get("adjusted_to_count")]
    if adjusted:
        text += (
            f" The histogram{'s' if len(adjusted) > 1 else ''} of {', '.join(adjusted)} "
            f"{'were' if len(adjusted) > 1 else 'was'} adjusted to add up to the count (no privacy cost); "
            "the bound above is for the counts "
            "as released, before that adjustment."
        )
    return text


def datasheet_view(*, sheet: Datasheet) -> dict[str, Any]:
    """The datasheet as a reader sees it: the author's content merged with evidence, its completeness
    per section, and per section what the reader must know about evidence in it (`notes`)."""
    evidence = evidence_for(sheet=sheet)
    return {
        "content": datasheets.merged(sheet.content, evidence),
        "completeness": datasheets.completeness(sheet.kind, sheet.content, evidence),
        "notes": {name: values["note"] for name, values in evidence.items() if values.get("note")},
    }


@dataclass(frozen=True)
class DatasetDatasheet:
    """A dataset version and its newest datasheet as a reader sees it (both None when it has none)."""

    node: Node
    sheet: Datasheet | None
    view: dict[str, Any] | None


def dataset_datasheets(*, nodes: list[Node]) -> list[DatasetDatasheet]:
    """The newest datasheet of each dataset version in `nodes`, in their order: one query for the
    sheets, and one per sheet for the DP summary that fills its composition."""
    newest = (
        Datasheet.objects.filter(subject=OuterRef("subject"), kind=DatasheetKind.DATASET)
        .order_by("-revision")
        .values("revision")[:1]
    )
    sheets = {
        sheet.subject_id: sheet
        for sheet in Datasheet.objects.filter(
            subject__in=nodes, kind=DatasheetKind.DATASET, revision=Subquery(newest)
        )
    }
    found = []
    for node in nodes:
        sheet = sheets.get(node.pk)
        if sheet is not None:
            sheet.subject = node  # the caller's row: evidence_for reads it without a second query
        found.append(DatasetDatasheet(node, sheet, datasheet_view(sheet=sheet) if sheet else None))
    return found


def dataset_node_ids(*, workspace: Workspace, keys: set[str]) -> dict[str, int]:
    """The lineage node id of each dataset version among `keys` (other strings are left out)."""
    if not keys:
        return {}
    return dict(
        Node.objects.filter(workspace=workspace, kind=NodeKind.DATASET_VERSION, key__in=keys).values_list(
            "key", "pk"
        )
    )


# --- policies and decisions ---------------------------------------------------------------------------


def policy_list(*, workspace: Workspace) -> QuerySet[Policy]:
    """The workspace's active policies (one revision of each name)."""
    return Policy.objects.filter(workspace=workspace, active=True)


def decision_get(*, workspace: Workspace, decision_id: UUID | str) -> GateDecision:
    """A gate decision of the workspace (NotFound otherwise)."""
    decision = GateDecision.objects.filter(workspace=workspace, pk=decision_id).first()
    if decision is None:
        raise NotFound("no such gate decision in this workspace")
    return decision


def gate_rule_documents(*, workspace: Workspace, gate: dict[str, Any]) -> dict[tuple[str, int, str], dict]:
    """Each rule as written in the policy revisions a gate evaluation names, by (policy, revision,
    rule id): the bound a rule's value is held to. One query, whatever the number of policies."""
    revisions = {(r["policy"], r["policy_revision"]) for r in gate["rules"] if r.get("policy_revision")}
    if not revisions:
        return {}
    wanted = Q()
    for name, revision in revisions:
        wanted |= Q(name=name, revision=revision)
    documents: dict[tuple[str, int, str], dict] = {}
    for policy in Policy.objects.filter(wanted, workspace=workspace):
        for index, rule in enumerate(policy.document["rules"]):
            # The id gates.evaluate gives a rule written without one.
            rule_id = rule.get("id") or f"{rule['type']}-{index + 1}"
            documents[(policy.name, policy.revision, rule_id)] = rule
    return documents


# --- promotion requests -------------------------------------------------------------------------------


def reviews_prefetch() -> Prefetch:
    """Each request's reviews with their reviewers, in one query for a whole page of requests."""
    return Prefetch("reviews", queryset=Review.objects.select_related("reviewer"))


def promotion_request_list(*, workspace: Workspace, state: str | None = None) -> QuerySet[PromotionRequest]:
    """The workspace's promotion requests (in `state`, when given), newest first, with their reviews."""
    requests = PromotionRequest.objects.filter(workspace=workspace)
    if state:
        requests = requests.filter(state=state)
    return requests.select_related("model_version__registered_model", "requested_by").prefetch_related(
        reviews_prefetch()
    )


def version_promotion_requests(
    *, workspace: Workspace, name: str, version: str
) -> QuerySet[PromotionRequest]:
    """The promotion requests of `name@version`, newest first, with their reviews."""
    found = version_get(workspace=workspace, name=name, version=version)
    return found.promotion_requests.select_related("requested_by").prefetch_related(reviews_prefetch())


@dataclass(frozen=True)
class ReviewQueue:
    """The open requests waiting for a review, and the latest closed ones."""

    open: QuerySet[PromotionRequest]
    closed: QuerySet[PromotionRequest]


def review_queue(*, workspace: Workspace, closed: int = 20) -> ReviewQueue:
    """The open requests and the `closed` most recently created closed ones, each with its version."""
    requests = PromotionRequest.objects.filter(workspace=workspace)
    return ReviewQueue(
        open=requests.filter(state=RequestState.OPEN).select_related(
            "model_version__registered_model", "requested_by"
        ),
        closed=requests.exclude(state=RequestState.OPEN).select_related("model_version__registered_model")[
            :closed
        ],
    )


# --- reports ------------------------------------------------------------------------------------------


def version_reports(*, workspace: Workspace, name: str, version: str) -> QuerySet[Report]:
    """The reports of `name@version`, newest first."""
    found = version_get(workspace=workspace, name=name, version=version)
    return (
        Report.objects.filter(workspace=workspace, model_version=found)
        .select_related("model_version__registered_model")
        .order_by("-created_at")
    )


def report_get(*, workspace: Workspace, report_id: UUID | str) -> Report:
    """A report of the workspace, with its version and model (NotFound otherwise)."""
    report = (
        Report.objects.filter(workspace=workspace, pk=report_id)
        .select_related("model_version__registered_model")
        .first()
    )
    if report is None:
        raise NotFound("no such report in this workspace")
    return report


def report_list(*, workspace: Workspace, version: ModelVersion | None = None) -> QuerySet[Report]:
    """The workspace's reports (of one `version`, when given), newest first, each with its version,
    model and who asked for it."""
    found = Report.objects.filter(workspace=workspace)
    if version is not None:
        found = found.filter(model_version=version)
    return found.select_related("model_version__registered_model", "requested_by").order_by("-created_at")
