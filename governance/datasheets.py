"""Datasheets: model cards (Mitchell et al. 2019), dataset datasheets (Gebru et al. 2021), and the
authored sections of a model version's EU AI Act technical documentation (Annex IV: what only people
can say; the technical file's other sections are generated from evidence).

A datasheet is a JSON document of sections, each section an object of named text (or list) fields.
It is validated by JSON Schema (unknown sections or fields, and wrong types, are errors that name the
field); any section may be missing or partial, and completeness is computed per section as the share
of its fields that hold something. Some sections can be filled from evidence the service holds, and
are reported with `filled_from`: training and evaluation data from the lineage graph, quantitative
analyses from fairness assessments, a dataset's composition from its DP summary.

Documents arrive as JSON, YAML, or Markdown with YAML front matter (the front matter is the document;
the Markdown body, if any, becomes `notes`).
"""

from __future__ import annotations

import datetime
import html
import math
from typing import Any

import jsonschema

from core.documents import yaml_load
from core.errors import ApplicationError, FieldError

MODEL_CARD_SECTIONS: dict[str, list[str]] = {
    "model_details": ["name", "version", "owners", "date", "type", "license", "description"],
    "intended_use": ["primary_uses", "primary_users", "out_of_scope_uses"],
    "factors": ["relevant_factors", "evaluation_factors"],
    "metrics": ["performance_measures", "decision_thresholds", "variation_approaches"],
    "evaluation_data": ["datasets", "motivation", "preprocessing"],
    "training_data": ["datasets", "description"],
    "quantitative_analyses": ["unitary_results", "intersectional_results"],
    "ethical_considerations": ["sensitive_data", "risks_and_harms", "mitigations"],
    "caveats_and_recommendations": ["caveats", "recommendations"],
}

DATASHEET_SECTIONS: dict[str, list[str]] = {
    "motivation": ["purpose", "creators", "funding"],
    "composition": ["instances", "count", "missing_data", "confidential_data", "sensitive_attributes"],
    "collection_process": ["acquisition", "sampling", "timeframe", "consent"],
    "preprocessing": ["cleaning", "labeling", "raw_data_kept"],
    "uses": ["prior_uses", "recommended_uses", "out_of_scope_uses"],
    "distribution": ["recipients", "license", "restrictions"],
    "maintenance": ["maintainer", "contact", "update_policy", "retention"],
}

# Regulation (EU) 2024/1689, Annex IV, the points named beside each section (and the articles they
# refer to). Each field is free text (or a list) written by the provider's people.
ANNEX_IV_SECTIONS: dict[str, list[str]] = {
    # 1: the system's general description
    "general_description": [
        "intended_purpose",
        "provider",
        "foreseeable_misuse",
        "deployment_forms",
        "hardware",
        "user_interface",
        "instructions_for_use",
    ],
    # 2(e) and Article 14: human oversight
    "human_oversight": ["measures", "interpretation_aids", "intervention_and_stop"],
    # 2(f): changes decided in advance
    "predetermined_changes": ["changes", "how_validated"],
    # 2(h): cybersecurity
    "cybersecurity": ["measures"],
    # 3: monitoring, functioning and control
    "monitoring_and_control": [
        "capabilities_and_limitations",
        "expected_accuracy",
        "input_data_specifications",
    ],
    # 5 and Article 9: the risk-management system
    "risk_management": ["process", "known_risks", "foreseeable_risks", "measures", "residual_risks"],
    # 7: harmonised standards applied, or the other solutions adopted
    "harmonised_standards": ["standards_applied", "other_solutions"],
    # 8 and Article 47: the EU declaration of conformity
    "declaration_of_conformity": ["reference", "date", "signatory"],
    # 9 and Article 72: post-market monitoring
    "post_market_monitoring": ["plan", "data_collected", "review_frequency", "responsible"],
}

SECTIONS = {"model_card": MODEL_CARD_SECTIONS, "datasheet": DATASHEET_SECTIONS, "annex_iv": ANNEX_IV_SECTIONS}
TITLES = {
    "model_card": "Model card",
    "datasheet": "Datasheet",
    "annex_iv": "Technical documentation (EU AI Act Annex IV, authored sections)",
}
MAX_TEXT = 20_000


def _value_schema() -> dict[str, Any]:
    text = {"type": "string", "maxLength": MAX_TEXT}
    scalar = {"type": ["string", "number", "boolean", "null"]}
    return {
        "anyOf": [
            text,
            scalar,
            {"type": "array", "maxItems": 500, "items": {"anyOf": [scalar, {"type": "object"}]}},
            {"type": "object"},
        ]
    }


def schema(kind: str) -> dict[str, Any]:
    sections = SECTIONS[kind]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": TITLES[kind],
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **{
                name: {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {field: _value_schema() for field in fields},
                }
                for name, fields in sections.items()
            },
            "notes": {"type": "string", "maxLength": 200_000},
        },
    }


def validate(kind: str, content: Any) -> dict[str, Any]:
    """The content if valid; else ApplicationError with one error per problem, naming its field."""
    validator = jsonschema.Draft202012Validator(schema(kind))
    errors = sorted(validator.iter_errors(content), key=lambda e: list(e.absolute_path))
    if errors:
        found = []
        for error in errors[:50]:
            path = ".".join(str(p) for p in error.absolute_path)
            if error.validator == "additionalProperties":
                extra = sorted(set(error.instance) - set(error.schema.get("properties", {})), key=str)
                for name in extra:
                    field = f"{path}.{name}" if path else name
                    allowed = ", ".join(error.schema.get("properties", {}))
                    found.append(FieldError(f"content.{field}", f"unknown field; expected one of: {allowed}"))
                continue
            found.append(FieldError(f"content.{path}" if path else "content", error.message))
        raise ApplicationError(f"the {TITLES[kind].lower()} is not valid", errors=found)
    return content


def parse(text: str, fmt: str, *, field: str = "document") -> Any:
    """A document from its text: `json`, `yaml` or `markdown` (YAML front matter + body), as JSON data
    (see `as_json`). `field` is the request field that carried the text: errors name it, and where in
    the document the problem is (`document.model_details.name`)."""
    if fmt == "markdown":
        if not text.startswith("---"):
            raise ApplicationError("a Markdown datasheet starts with YAML front matter (---)", field=field)
        try:
            _, front, body = text.split("---", 2)
        except ValueError:
            raise ApplicationError("the YAML front matter has no closing ---", field=field) from None
        content = yaml_load(front, field=field) or {}
        if body.strip() and isinstance(content, dict):
            content.setdefault("notes", body.strip())
        return as_json(content, field)
    return as_json(yaml_load(text, field=field), field)  # YAML is a superset of JSON


def as_json(value: Any, path: str = "document") -> Any:
    """YAML data as the JSON it will be stored as: dates and times (`date: 2026-01-15`, unquoted) become
    their ISO text; keys must be strings without NUL, text without NUL (`\\0` in YAML; PostgreSQL
    cannot store it) and numbers finite, or the document is refused naming where."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ApplicationError(f"{path}: the key {key!r} is not a string (quote it)", field=path)
            if "\x00" in key:
                raise ApplicationError(f"{path}: a key contains a NUL character (\\0)", field=path)
            out[key] = as_json(item, f"{path}.{key}")
        return out
    if isinstance(value, list):
        return [as_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        raise ApplicationError(f"{path}: {value!r} is not a finite number", field=path)
    if isinstance(value, str) and "\x00" in value:
        raise ApplicationError(f"{path}: text must not contain NUL (\\0)", field=path)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ApplicationError(f"{path}: a {type(value).__name__} cannot be stored as JSON", field=path)


def _filled(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, dict)):
        return bool(value)
    return True


def completeness(
    kind: str, content: dict[str, Any], evidence: dict[str, dict] | None = None
) -> dict[str, Any]:
    """Per section: the share of its fields filled (by the author or by evidence), and overall."""
    evidence = evidence or {}
    sections: dict[str, dict[str, Any]] = {}
    for name, fields in SECTIONS[kind].items():
        written = content.get(name) or {}
        from_evidence = evidence.get(name) or {}
        filled = [f for f in fields if _filled(written.get(f)) or _filled(from_evidence.get(f))]
        sections[name] = {
            "filled": len(filled),
            "fields": len(fields),
            "completeness": round(len(filled) / len(fields), 4),
            "missing": [f for f in fields if f not in filled],
            "filled_from": sorted(
                {from_evidence["source"]} if from_evidence.get("source") and from_evidence else set()
            ),
        }
    filled_total = sum(int(s["filled"]) for s in sections.values())
    overall = filled_total / sum(int(s["fields"]) for s in sections.values())
    return {"overall": round(overall, 4), "sections": sections}


def merged(content: dict[str, Any], evidence: dict[str, dict]) -> dict[str, Any]:
    """The datasheet as shown: the author's text, with empty fields filled from evidence."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in content.items()}
    for section, values in evidence.items():
        target = out.setdefault(section, {})
        for field, value in values.items():
            if field not in ("source", "note") and not _filled(target.get(field)):
                target[field] = value
    return out


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def to_markdown(kind: str, subject: str, content: dict[str, Any], report: dict[str, Any]) -> str:
    lines = [f"# {TITLES[kind]}: {subject}", "", f"Completeness: {report['overall']:.0%}", ""]
    for name, fields in SECTIONS[kind].items():
        section = content.get(name) or {}
        info = report["sections"][name]
        source = f" (filled from {', '.join(info['filled_from'])})" if info["filled_from"] else ""
        lines += [f"## {_label(name)}{source}", "", f"_{info['filled']}/{info['fields']} fields_", ""]
        for field in fields:
            if _filled(section.get(field)):
                lines.append(f"- **{_label(field)}**: {_text(section[field])}")
        if info["missing"]:
            lines += ["", f"Missing: {', '.join(_label(f) for f in info['missing'])}"]
        lines.append("")
    if content.get("notes"):
        lines += ["## Notes", "", str(content["notes"]), ""]
    return "\n".join(lines)


def to_html(kind: str, subject: str, content: dict[str, Any], report: dict[str, Any]) -> str:
    """A self-contained HTML page (no scripts, no external resources; everything escaped)."""
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(TITLES[kind])}: {esc(subject)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;line-height:1.5}"
        "dt{font-weight:600}.meta{color:#555}</style></head><body>",
        f"<h1>{esc(TITLES[kind])}: {esc(subject)}</h1>",
        f"<p class='meta'>Completeness: {report['overall']:.0%}</p>",
    ]
    for name, fields in SECTIONS[kind].items():
        section = content.get(name) or {}
        info = report["sections"][name]
        source = f" (filled from {esc(', '.join(info['filled_from']))})" if info["filled_from"] else ""
        parts.append(f"<h2>{esc(_label(name))}{source}</h2>")
        parts.append(f"<p class='meta'>{info['filled']}/{info['fields']} fields</p><dl>")
        for field in fields:
            if _filled(section.get(field)):
                parts.append(f"<dt>{esc(_label(field))}</dt><dd>{esc(_text(section[field]))}</dd>")
        parts.append("</dl>")
        if info["missing"]:
            missing = ", ".join(esc(_label(f)) for f in info["missing"])
            parts.append(f"<p class='meta'>Missing: {missing}</p>")
    if content.get("notes"):
        parts.append(f"<h2>Notes</h2><pre>{esc(str(content['notes']))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)
