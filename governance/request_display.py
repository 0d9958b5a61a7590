"""How the request page shows what `request_evidence.promotion_request_evidence` read: values for people
(about four significant digits, the exact value kept for a tooltip), gate evidence as labelled values
with links to jobs and lineage nodes, each rule's bound as its policy revision wrote it, datasheets
section by section, the comparison with the version now in the requested stage, and the summaries
that stand in for the charts. Shaping only: nothing here reads the database."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.urls import reverse

from core.templatetags.numbers import sig
from explain.evidence import Estimate, Explanation
from governance import datasheets
from governance.datasheets import _filled
from governance.models import Datasheet, DatasheetKind
from governance.request_evidence import VersionEvidence
from governance.selectors import DatasetDatasheet
from lineage.models import Node
from lineage.stores.base import Subgraph


def label(name: str) -> str:
    """`sensitive_features` -> `sensitive features`."""
    return str(name).replace("_", " ")


# --- values -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A value as the page shows it (templates/governance/shown.html draws it). `kind` is one of
    number (`text` rounded, `full` exact), text, code (hashes), link, list, map or missing."""

    kind: str
    text: str = ""
    full: str = ""
    href: str = ""
    items: tuple[Shown, ...] = ()
    entries: tuple[tuple[str, str, Shown], ...] = ()  # (label, link for the label or "", value)


MISSING = Shown("missing")


def number(value: float | int | None) -> Shown:
    """A number at about four significant digits (integers whole), the exact value as `full`."""
    if value is None:
        return MISSING
    if isinstance(value, int):
        return Shown("number", str(value), str(value))
    return Shown("number", sig(value), repr(float(value)))


def estimate(value: Estimate | None) -> Shown:
    """A measured value with its interval, `0.1234 [0.09, 0.15]`."""
    if value is None or value.value is None:
        return MISSING
    if not value.has_interval:
        return number(value.value)
    return Shown(
        "number",
        f"{sig(value.value)} [{sig(value.low)}, {sig(value.high)}]",
        f"{value.value!r} [{value.low!r}, {value.high!r}]",
    )


@dataclass(frozen=True)
class Links:
    """Where the page links a value: a job to its row on the jobs page, a dataset version or a
    model version to its lineage node."""

    slug: str
    model_key: str  # the requested version's key: its jobs page filter
    nodes: Mapping[str, int] = field(default_factory=dict)  # lineage node id by key

    def job(self, job_id: str) -> str:
        jobs = reverse("dashboard-jobs", kwargs={"slug": self.slug})
        return f"{jobs}?model={quote(self.model_key)}#job-{job_id}"

    def node(self, key: str) -> str:
        node_id = self.nodes.get(key)
        if node_id is None:
            return ""
        return reverse("dashboard-lineage-node", kwargs={"slug": self.slug, "node_id": node_id})

    def href(self, key: str, value: str) -> str:
        """The link for `value` found under `key` in evidence ("" for none)."""
        if key == "job" and value:
            return self.job(value)
        return self.node(value)


CODE_FIELDS = ("sha256", "hash")  # fields whose text is a digest: shown whole, in code, wrapping


def shown(value: Any, links: Links | None = None, key: str = "") -> Shown:
    """A JSON value (evidence, a datasheet field) as labelled, linked, rounded parts."""
    if value is None or value == "" or value == [] or value == {}:
        return MISSING
    if isinstance(value, bool):
        return Shown("text", "yes" if value else "no")
    if isinstance(value, (int, float)):
        return number(value) if math.isfinite(value) else Shown("text", str(value))
    if isinstance(value, str):
        return _text(value, links, key)
    if isinstance(value, Mapping):
        entries = []
        for k, v in value.items():
            href = links.node(str(k)) if links else ""  # a key that names a node (a dataset) stays as it is
            entries.append((str(k) if href else label(k), href, shown(v, links, str(k))))
        return Shown("map", entries=tuple(entries))
    if isinstance(value, (list, tuple)):
        return Shown("list", items=tuple(shown(item, links, key) for item in value))
    return Shown("text", str(value))


def _text(value: str, links: Links | None, key: str) -> Shown:
    """Text, a digest (shown whole, wrapping) or a link to the job or node it names."""
    if key.endswith(CODE_FIELDS):
        return Shown("code", value)
    href = links.href(key, value) if links else ""
    if not href:
        return Shown("text", value)
    if key == "job":  # a job id reads as its first characters; the whole id is the title
        return Shown("link", f"job {value[:8]}…", value, href)
    return Shown("link", value, href=href)


# --- the gate -----------------------------------------------------------------------------------------

# Rule fields that are not a bound: what the rule is, and whom it governs.
NOT_BOUND = {"type", "id", "description", "applies_to"}
# Evidence already shown in the rule's value or bound column.
SHOWN_ELSEWHERE = {
    "fairness_bound": {"value", "low", "high", "metric"},
    "metric_threshold": {"value", "min", "max", "metric"},
    "approvals": {"needed", "role", "request"},  # (the request is this page)
    "datasheet_complete": {"sections"},
    "explanation_present": {"top_features"},
    "lineage_contains": {"required"},
}


@dataclass(frozen=True)
class RuleRow:
    """One rule of the gate: its entry in the evaluation, what its policy wrote, and its value."""

    entry: Mapping[str, Any]  # policy, rule, type, passed, reason, evidence
    description: str
    bound: Shown
    value: Shown
    evidence: Shown

    @property
    def applicable(self) -> bool:
        return self.entry.get("applicable", True)


def rule_value(entry: Mapping[str, Any]) -> Shown:
    """What the rule measured, for the rule types that measure one thing."""
    evidence, kind = entry.get("evidence") or {}, entry["type"]
    if kind == "fairness_bound" and evidence.get("value") is not None:
        return estimate(Estimate(evidence["value"], evidence.get("low"), evidence.get("high")))
    if kind == "metric_threshold" and "value" in evidence:
        return shown(evidence["value"])
    if kind == "approvals" and "approvers" in evidence:
        return Shown("text", f"{len(evidence['approvers'])} of {evidence.get('needed', '?')}")
    if kind == "datasheet_complete" and "sections" in evidence:
        return shown(evidence["sections"])
    if kind == "explanation_present" and "top_features" in evidence:
        return shown(evidence["top_features"])
    if kind == "lineage_contains" and "present" in evidence:
        return shown(evidence["present"])
    return MISSING


def gate_rows(
    gate: Mapping[str, Any], documents: Mapping[tuple[str, int, str], Mapping[str, Any]], links: Links
) -> list[RuleRow]:
    """Every rule of the evaluation with the bound its policy revision set and its evidence."""
    rows = []
    for entry in gate["rules"]:
        written = documents.get((entry["policy"], entry.get("policy_revision"), entry["rule"])) or {}
        bound = {k: v for k, v in written.items() if k not in NOT_BOUND}
        hidden = SHOWN_ELSEWHERE.get(entry["type"], set())
        evidence = {
            k: v for k, v in (entry.get("evidence") or {}).items() if v is not None and k not in hidden
        }
        rows.append(
            RuleRow(
                entry=entry,
                description=str(written.get("description", "")),
                bound=shown(bound) if bound else MISSING,
                value=rule_value(entry),
                evidence=shown(evidence, links) if evidence else MISSING,
            )
        )
    return rows


# --- datasheets ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetField:
    name: str
    label: str
    value: Shown  # MISSING when nobody filled it
    from_evidence: bool


@dataclass(frozen=True)
class SheetSection:
    name: str
    title: str
    filled: int
    size: int
    filled_from: list[str]
    fields: list[SheetField]
    note: str = ""  # what the reader must know about the evidence in it (a DP summary is noisy)


def datasheet_sections(
    kind: str, written: Mapping[str, Any], view: Mapping[str, Any], links: Links | None = None
) -> list[SheetSection]:
    """Each section of the datasheet with each of its fields: the author's text, or what evidence
    filled (marked), or missing."""
    content, report = view["content"], view["completeness"]["sections"]
    sections = []
    for name, fields in datasheets.SECTIONS[kind].items():
        section, own = content.get(name) or {}, written.get(name) or {}
        info = report[name]
        sections.append(
            SheetSection(
                name=name,
                title=label(name).capitalize(),
                filled=info["filled"],
                size=info["fields"],
                filled_from=info["filled_from"],
                note=(view.get("notes") or {}).get(name, ""),
                fields=[
                    SheetField(
                        name=f,
                        label=label(f).capitalize(),
                        value=shown(section.get(f), links, f),
                        # datasheets.merged fills exactly the fields the author left empty
                        from_evidence=not _filled(own.get(f)) and _filled(section.get(f)),
                    )
                    for f in fields
                ],
            )
        )
    return sections


@dataclass(frozen=True)
class SheetReading:
    """A dataset version with its newest datasheet section by section (none when it has none)."""

    node: Node
    sheet: Datasheet | None
    completeness: float | None
    sections: list[SheetSection]


def training_datasheets(found: Iterable[DatasetDatasheet], links: Links) -> list[SheetReading]:
    """The training data's datasheets as the page reads them."""
    return [
        SheetReading(
            node=item.node,
            sheet=item.sheet,
            completeness=item.view["completeness"]["overall"] if item.view else None,
            sections=(
                datasheet_sections(DatasheetKind.DATASET, item.sheet.content, item.view, links)
                if item.sheet is not None and item.view is not None
                else []
            ),
        )
        for item in found
    ]


# --- the version in the requested stage ---------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """How a value moved from the version in the stage to the requested one."""

    arrow: str  # ↑, ↓ or =, "" where there is nothing to compare
    text: str  # +0.0123, or what was added and removed
    full: str = ""
    direction: str = ""  # up, down, same: for the reader who does not see the arrow


NO_CHANGE = Change("", "")


def number_change(new: float | None, old: float | None) -> Change:
    if new is None or old is None:
        return NO_CHANGE
    difference = new - old
    if difference == 0:
        return Change("=", "0", "0", "same")
    direction = "up" if difference > 0 else "down"
    return Change("↑" if difference > 0 else "↓", f"{difference:+.4g}", repr(difference), direction)


def set_change(new: Iterable[str], old: Iterable[str]) -> Change:
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    if not added and not removed:
        return Change("=", "same", direction="same")
    parts = [f"+ {k}" for k in added] + [f"\N{MINUS SIGN} {k}" for k in removed]
    return Change("", "; ".join(parts), direction="changed")


@dataclass(frozen=True)
class CompareRow:
    label: str
    new: Shown
    old: Shown
    change: Change


@dataclass(frozen=True)
class CompareGroup:
    title: str
    rows: list[CompareRow]


def _numeric(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _importance(explanation: Explanation | None, k: int = 5) -> dict[str, float]:
    """Mean |SHAP| of the `k` most important features, for the output the figures are about."""
    if explanation is None:
        return {}
    out = {}
    for feature in explanation.top(k):
        values = explanation.importance.get(feature) or ()
        if len(values) > explanation.plot_output:
            out[feature] = values[explanation.plot_output]
    return out


def comparison(new: VersionEvidence, old: VersionEvidence, links: Links) -> list[CompareGroup]:
    """The requested version beside the one in the stage: metrics, disparities with their intervals,
    top features, training and evaluation data, each with how it changed."""
    groups = []
    new_metrics, old_metrics = new.version.metrics or {}, old.version.metrics or {}
    groups.append(
        CompareGroup(
            "Metrics",
            [
                CompareRow(
                    label(name),
                    shown(new_metrics.get(name)),
                    shown(old_metrics.get(name)),
                    number_change(_numeric(new_metrics.get(name)), _numeric(old_metrics.get(name))),
                )
                for name in sorted({*new_metrics, *old_metrics})
            ],
        )
    )
    new_fairness = {a.sensitive_features: a for a in new.fairness}
    old_fairness = {a.sensitive_features: a for a in old.fairness}
    for features in sorted({*new_fairness, *old_fairness}):
        mine, theirs = new_fairness.get(features), old_fairness.get(features)
        names = [*(mine.disparities if mine else {}), *(theirs.disparities if theirs else {})]
        rows = []
        for name in dict.fromkeys(names):
            a = mine.disparity(name) if mine else None
            b = theirs.disparity(name) if theirs else None
            rows.append(
                CompareRow(
                    label(name),
                    estimate(a),
                    estimate(b),
                    number_change(a.value if a else None, b.value if b else None),
                )
            )
        groups.append(CompareGroup(f"Disparities by {', '.join(features)}", rows))
    new_top, old_top = _importance(new.explanation), _importance(old.explanation)
    groups.append(
        CompareGroup(
            "Top features (mean |SHAP|)",
            [
                CompareRow(
                    feature,
                    number(new_top.get(feature)),
                    number(old_top.get(feature)),
                    number_change(new_top.get(feature), old_top.get(feature)),
                )
                for feature in dict.fromkeys([*new_top, *old_top])
            ],
        )
    )
    new_training, old_training = [n.key for n in new.training], [n.key for n in old.training]
    groups.append(
        CompareGroup(
            "Data",
            [
                CompareRow(
                    "training data",
                    shown(new_training, links),
                    shown(old_training, links),
                    set_change(new_training, old_training),
                ),
                CompareRow(
                    "evaluation data",
                    shown(new.evaluation_data, links),
                    shown(old.evaluation_data, links),
                    set_change(new.evaluation_data, old.evaluation_data),
                ),
            ],
        )
    )
    return [g for g in groups if g.rows]


# --- what stands in for the charts --------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSummary:
    feature: str
    mean_abs: Shown  # mean |SHAP| over every explained row
    low: Shown  # the lowest and highest SHAP value among the rows the beeswarm plots
    high: Shown


def _beeswarm_ranges(figure: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Per feature, the lowest and highest SHAP value the beeswarm plots. Its points sit on the
    feature's tick (`explainers.figures`: y is the tick plus a jitter of less than half a step)."""
    ticks = (figure.get("layout") or {}).get("yaxis") or {}
    names = dict(zip(ticks.get("tickvals") or [], ticks.get("ticktext") or [], strict=False))
    ranges: dict[str, tuple[float, float]] = {}
    for trace in figure.get("data") or []:
        for x, y in zip(trace.get("x") or [], trace.get("y") or [], strict=False):
            if x is None or y is None:
                continue
            name = names.get(round(y))
            if name is None:
                continue
            low, high = ranges.get(name, (x, x))
            ranges[name] = (min(low, x), max(high, x))
    return ranges


def shap_summary(explanation: Explanation) -> list[FeatureSummary]:
    """Each feature the importance chart shows, most important first: its mean |SHAP| and the range
    of its SHAP values in the beeswarm."""
    ranges = _beeswarm_ranges(explanation.figures.get("beeswarm") or {})
    rows = []
    for feature in explanation.top_features[:20]:
        values = explanation.importance.get(feature) or ()
        mean_abs = values[explanation.plot_output] if len(values) > explanation.plot_output else None
        low, high = ranges.get(feature, (None, None))
        rows.append(FeatureSummary(feature, number(mean_abs), number(low), number(high)))
    return rows


@dataclass(frozen=True)
class ProvenanceEdge:
    src: str
    kind: str
    dst: str


def provenance_edges(graph: Subgraph) -> list[ProvenanceEdge]:
    """The provenance graph's edges as `source kind target`, by source."""
    keys = {node.id: f"{node.kind}: {node.key}" for node in graph.nodes}
    edges = [
        ProvenanceEdge(keys.get(e.src, str(e.src)), label(e.kind).lower(), keys.get(e.dst, str(e.dst)))
        for e in graph.edges
    ]
    return sorted(edges, key=lambda e: (e.src, e.kind, e.dst))
