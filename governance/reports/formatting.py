"""How the report's values read on the HTML page and in the PDF alike: numbers at four significant
digits with their intervals, a rule's parameters, a rule's measured value and evidence, an edge."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from governance.reports.charts import sig

RESULTS = {True: "pass", False: "FAIL", None: "n/a"}


def estimate(found: Mapping[str, Any] | None) -> str:
    """`0.3142 [0.29, 0.34]`; blank for none; `not measured` for a value that is null."""
    if not found:
        return ""
    if found.get("value") is None:
        return "not measured"
    text = sig(found["value"])
    if found.get("low") is not None and found.get("high") is not None:
        text += f" [{sig(found['low'])}, {sig(found['high'])}]"
    if found.get("undefined"):
        text += " (undefined)"
    if found.get("note"):
        text += " " + NOTE_MARK
    return text


NOTE_MARK = "†"


def interval_notes(assessment: Mapping[str, Any]) -> list[str]:
    """The notes on the assessment's estimates shown with `NOTE_MARK` (why an interval does not
    contain its value), each once."""
    estimates = [g.get(k) for g in assessment["groups"] for k in ("metric", "difference")]
    estimates += assessment["disparities"]
    return list(dict.fromkeys(e["note"] for e in estimates if e and e.get("note")))


def when(iso: str | None) -> str:
    """An ISO time as `2026-11-30 10:13:24 UTC` (the bundle keeps the exact value)."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if moment.tzinfo is not None else "")


def value(item: Any) -> str:
    """A parameter or evidence value: numbers at four significant digits, lists joined, objects as
    compact JSON."""
    if isinstance(item, bool) or item is None:
        return json.dumps(item)
    if isinstance(item, float):
        return sig(item)
    if isinstance(item, list) and all(isinstance(i, (str, int, float)) for i in item):
        return ", ".join(value(i) for i in item)
    if isinstance(item, (dict, list)):
        return json.dumps(item, sort_keys=True, ensure_ascii=False)
    return str(item)


def pairs(mapping: Mapping[str, Any] | None, skip: tuple[str, ...] = ()) -> str:
    """`key value; key value` of the entries that hold something."""
    return "; ".join(f"{k} {value(v)}" for k, v in (mapping or {}).items() if v is not None and k not in skip)


def parameters(rule: Mapping[str, Any] | None) -> str:
    """A rule's parameters as its policy revision wrote them (its thresholds), or why they are unknown."""
    if rule is None or rule.get("parameters") is None:
        return "(not in the policy revision)"
    return pairs(rule["parameters"]) or "(none)"


def measured(evidence: Mapping[str, Any]) -> str:
    """The value a rule measured, with its interval where the evidence has one."""
    if "value" not in evidence:
        return ""
    return estimate(
        {"value": evidence.get("value"), "low": evidence.get("low"), "high": evidence.get("high")}
    )


def evidence(found: Mapping[str, Any]) -> str:
    """A rule's evidence, less what `measured` shows."""
    return pairs(found, skip=("value", "low", "high"))


def backend(explanation: Mapping[str, Any]) -> str:
    """Where an explanation ran: `cpu (numba TreeSHAP)`, or just `cpu`."""
    detail = explanation.get("backend_detail")
    return f"{explanation['backend']} ({detail})" if detail else str(explanation["backend"])


def edge(item: Mapping[str, Any]) -> str:
    """A provenance edge as `from --KIND--> to`."""
    return f"{item['from']} --{item['kind']}--> {item['to']}"


def decision_rules(decision: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """Each signed rule of a decision with its parameters (matched by position, then by name)."""
    written = decision.get("rules") or []
    found = []
    for index, rule in enumerate(decision["statement"]["rules"]):
        match = written[index] if index < len(written) else None
        if match is None or (match.get("policy"), match.get("rule")) != (rule["policy"], rule["rule"]):
            match = next(
                (w for w in written if (w.get("policy"), w.get("rule")) == (rule["policy"], rule["rule"])),
                None,
            )
        found.append((rule, match))
    return found
