"""The report as one self-contained HTML page: inline styles, no scripts, nothing fetched; the charts
are the bundle's own SVG as data: URIs (an <img> never runs what an SVG holds), and every value from
the report is escaped."""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from governance.reports import formatting as fmt

STYLE = (
    "body{font-family:system-ui,'DejaVu Sans',sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.45;color:#1f2933}h2{border-bottom:1px solid #d5dae1;padding-bottom:.2rem;margin-top:2rem}"
    "table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;"
    "padding:.3rem .5rem;text-align:left;font-size:.9rem;vertical-align:top}"
    "table.fixed{table-layout:fixed}table.fixed td{overflow-wrap:anywhere}"
    "caption{text-align:left;color:#555;font-size:.9rem}.pass{color:#116b2f}.fail{color:#a11}.muted{color:#6b7280}"
    "code,.hash{font-family:'DejaVu Sans Mono',monospace;word-break:break-all;font-size:.85rem}"
    "figure{margin:1rem 0}img.chart{max-width:100%;height:auto;border:1px solid #e5e7eb}"
    "dl.fields dt{font-weight:600;margin-top:.4rem}dl.fields dd{margin-left:1rem;white-space:pre-wrap}"
    "blockquote{margin:.3rem 0 .3rem 1rem;padding-left:.7rem;border-left:3px solid #d5dae1;"
    "white-space:pre-wrap}"
    "p.note{background:#fff8e1;border-left:3px solid #e0a800;padding:.4rem .6rem;font-size:.9rem}"
    "@media print{figure,table{break-inside:avoid}body{max-width:none}}"
)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(
    headings: Sequence[str],
    rows: Iterable[Sequence[str]],
    caption: str = "",
    cls: str = "",
    widths: Sequence[int] = (),
) -> str:
    """A table of cells that are already HTML (each value escaped by the caller); with `widths`
    (percentages), its columns keep them and long words break inside their cells."""
    head = "".join(f"<th scope='col'>{_e(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    caption_html = f"<caption>{_e(caption)}</caption>" if caption else ""
    columns = "".join(f"<col style='width:{w}%'>" for w in widths)
    if columns:
        cls, columns = f"{cls} fixed".strip(), f"<colgroup>{columns}</colgroup>"
    return (
        f"<table class='{cls}'>{caption_html}{columns}<thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _chart(report: Mapping[str, Any], name: str, alt: str) -> str:
    svg = report["charts"].get(name)
    if not svg:
        return ""
    data = base64.b64encode(svg.encode()).decode()
    return (
        f"<figure><img class='chart' id='chart-{_e(name.replace(':', '-').replace(',', '-'))}' "
        f"alt='{_e(alt)}' src='data:image/svg+xml;base64,{data}'></figure>"
    )


def _sheet(sheet: Mapping[str, Any], title: str) -> list[str]:
    parts = [f"<h3>{_e(title)}: {_e(sheet['subject'])}</h3>"]
    if sheet.get("revision") is None:
        return [*parts, "<p class='fail'>No datasheet yet.</p>"]
    parts.append(
        f"<p class='muted'>Revision {sheet['revision']} by {_e(sheet['created_by'] or '?')} on "
        f"{_e(fmt.when(sheet['created_at']))}; {sheet['completeness']:.0%} complete.</p>"
    )
    for section in sheet["sections"]:
        source = f" (filled from {_e(', '.join(section['filled_from']))})" if section["filled_from"] else ""
        parts.append(
            f"<h4>{_e(section['title'])}{source} <span class='muted'>{section['filled']}/{section['of']} "
            "fields</span></h4>"
        )
        if section["fields"]:
            parts.append("<dl class='fields'>")
            parts += [f"<dt>{_e(f['label'])}</dt><dd>{_e(f['text'])}</dd>" for f in section["fields"]]
            parts.append("</dl>")
        if section.get("note"):
            parts.append(f"<p class='note'>{_e(section['note'])}</p>")
        if section["missing"]:
            parts.append(f"<p class='muted'>Missing: {_e(', '.join(section['missing']))}</p>")
    if sheet["notes"]:
        parts.append(f"<h4>Notes</h4><blockquote>{_e(sheet['notes'])}</blockquote>")
    parts.append(
        _table(
            ["Revision", "Time", "By", "Sections changed"],
            (
                [
                    str(r["revision"]),
                    _e(fmt.when(r["created_at"])),
                    _e(r["created_by"]),
                    _e(", ".join(r["changed"])),
                ]
                for r in sheet["revisions"]
            ),
            caption="Revisions",
        )
    )
    return parts


def _fairness(report: Mapping[str, Any]) -> list[str]:
    parts = ["<h2 id='fairness'>Fairness by group</h2>"]
    if not report["fairness"]:
        return [*parts, "<p class='muted'>No fairness assessment of this version.</p>"]
    for a in report["fairness"]:
        features = ", ".join(a["sensitive_features"])
        boot = a.get("bootstrap") or {}
        intervals = (
            f"{boot['level']} bootstrap intervals ({boot['resamples']} resamples)" if boot else "no intervals"
        )
        parts.append(
            f"<h3>By {_e(features)}</h3><p class='muted'>Assessment {_e(a['job'])} on {_e(a['dataset'])}: "
            f"{a['rows']} rows, {_e(a['task'])}, {intervals}; reference group {_e(a['reference'])}.</p>"
        )
        parts.append(
            _chart(report, f"fairness:{','.join(a['sensitive_features'])}", f"{a['metric']} by {features}")
        )
        data = a.get("data")
        if data:
            overlap = (
                f"{data['overlap_rows']} of {data['rows']} rows are rows of the training data"
                if data["overlap_rows"] is not None
                else "its overlap with the training data was not proven"
            )
            notes = f" {_e(' '.join(data['notes']))}" if data["notes"] else ""
            parts.append(
                f"<p>Data: {_e(data['dataset'])} (SHA-256 <code>{_e(data['sha256'])}</code>); {overlap} "
                f"(compared with {_e(', '.join(data['training']) or 'no training data')}).{notes}</p>"
            )
        parts.append(
            _table(
                ["Group", "Rows", "Positives", a["metric"], "Difference to reference"],
                (
                    [
                        _e(g["group"])
                        + (" (reference)" if g["reference"] else "")
                        + ("" if g["eligible"] else " <span class='muted'>(left out)</span>"),
                        str(g["size"]),
                        _e(g["positives"]),
                        _e(fmt.estimate(g["metric"])),
                        _e(fmt.estimate(g["difference"])),
                    ]
                    for g in a["groups"]
                ),
                caption=f"Groups: size, positives, {a['metric']} with its interval, and the difference to "
                f"the reference group ({a['reference']})",
                cls="fairness-groups",
            )
        )
        parts.append(
            _table(
                ["Disparity", "Value [interval]"],
                ([_e(d["name"]), _e(fmt.estimate(d))] for d in a["disparities"]),
                caption=f"Disparities over the groups with at least {a['min_group_size']} rows",
            )
        )
        parts += [f"<p class='muted'>{fmt.NOTE_MARK} {_e(note)}</p>" for note in fmt.interval_notes(a)]
        if a["excluded"]:
            left_out = "; ".join(f"{x['group']} ({x['size']} rows): {x['reason']}" for x in a["excluded"])
            parts.append(f"<p>Groups left out: {_e(left_out)}</p>")
        parts += [f"<p class='fail'>{_e(w)}</p>" for w in a["warnings"]]
    return parts


def _explanation(report: Mapping[str, Any]) -> list[str]:
    parts = ["<h2 id='explanation'>Explanation</h2>"]
    found = report.get("explanation")
    if not found:
        return [*parts, "<p class='muted'>No explanation of this version.</p>"]
    residual = fmt.value(found["additivity_residual"])
    parts.append(
        f"<p class='muted'>Explanation {_e(found['job'])} on {_e(found['dataset'])}: {found['rows']} rows, "
        f"{_e(fmt.backend(found))}, additivity residual {_e(residual)}; "
        f"importance of output {_e(found['output'])}.</p>"
    )
    parts.append(_chart(report, "importance", "mean |SHAP value| of the most important features"))
    if found["importance"]:
        items = "".join(
            f"<li>{_e(i['feature'])}: {_e(fmt.value(i['mean_abs_shap']))}</li>" for i in found["importance"]
        )
        parts.append(f"<ol class='importance'>{items}</ol>")
    else:
        parts.append(f"<p>Top features: {_e(', '.join(found['top_features']))}</p>")
    return parts


def _decisions(report: Mapping[str, Any]) -> list[str]:
    parts = ["<h2 id='gate-decisions'>Gate decisions</h2>"]
    if not report["gate_decisions"]:
        return [*parts, "<p class='muted'>No gate decision yet.</p>"]
    for decision in report["gate_decisions"]:
        statement = decision["statement"]
        verdict = "passed" if statement["passed"] else "failed"
        parts.append(
            f"<h3 class='{'pass' if statement['passed'] else 'fail'}'>{_e(statement['stage'])}: {verdict} "
            f"({_e(fmt.when(statement['evaluated_at']))}, asked by {_e(statement.get('requested_by'))})</h3>"
            f"<p>Decision <code>{_e(statement['decision'])}</code>, signed with key "
            f"{_e(decision['key_id'])}: "
            f"<code class='hash'>{_e(decision['signature'])}</code></p>"
        )
        rows = []
        for rule, written in fmt.decision_rules(decision):
            result = fmt.RESULTS[rule["passed"]]
            rows.append(
                [
                    f"{_e(rule['policy'])}/{_e(rule['rule'])} <span class='muted'>{_e(rule['type'])}, "
                    f"revision {_e(rule.get('policy_revision'))}</span>",
                    f"<span class='{'pass' if rule['passed'] else 'fail'}'>{result}</span>",
                    _e(fmt.parameters(written)),
                    _e(fmt.measured(rule["evidence"])),
                    _e(rule["reason"]),
                    _e(fmt.evidence(rule["evidence"])),
                ]
            )
        parts.append(
            _table(
                ["Rule", "Result", "Threshold", "Value", "Reason", "Evidence"],
                rows,
                cls="rules",
                widths=(20, 7, 18, 12, 19, 24),
            )
        )
    return parts


def _requests(report: Mapping[str, Any]) -> list[str]:
    parts = ["<h2 id='reviews'>Promotion requests and reviews</h2>"]
    if not report["promotion_requests"]:
        return [*parts, "<p class='muted'>No promotion request.</p>"]
    for request in report["promotion_requests"]:
        closed = f", closed {_e(fmt.when(request['closed_at']))}" if request["closed_at"] else ""
        parts.append(
            f"<h3>To {_e(request['stage'])}: {_e(request['state'])}</h3><p class='muted'>Requested by "
            f"{_e(request['requested_by'])} on {_e(fmt.when(request['created_at']))}{closed}.</p>"
        )
        if request["comment"]:
            parts.append(f"<blockquote>{_e(request['comment'])}</blockquote>")
        reviews = [
            [
                _e(r["reviewer"]),
                _e(r["role"]),
                _e(fmt.when(r["time"])),
                _e(r["decision"]),
                f"<q>{_e(r['comment'])}</q>",
            ]
            for r in request["reviews"]
        ]
        parts.append(
            _table(["Reviewer", "Role", "Time", "Decision", "Comment"], reviews, cls="reviews")
            if reviews
            else "<p class='muted'>No review.</p>"
        )
    return parts


def _provenance(report: Mapping[str, Any]) -> list[str]:
    graph = report["provenance_graph"]
    parts = ["<h2 id='provenance'>Provenance</h2>", _chart(report, "provenance", "the provenance graph")]
    edges = "".join(f"<li><code>{_e(fmt.edge(e))}</code></li>" for e in graph["edges"])
    parts.append(f"<h3>Edges</h3><ul class='edges'>{edges or '<li>none</li>'}</ul>")
    parts.append(
        _table(
            ["Node", "Kind", "Steps upstream"],
            ([_e(n["key"]), _e(n["kind"]), str(n["depth"])] for n in graph["nodes"]),
            caption="Nodes",
        )
    )
    if graph["truncated"]:
        parts.append("<p class='fail'>The graph was cut at the service's depth limit.</p>")
    return parts


def _audit(report: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            str(e["document"]["seq"]),
            _e(fmt.when(e["document"]["time"])),
            _e(e["document"]["actor"]),
            _e(e["document"]["action"]),
            _e(e["document"]["target"]),
            f"<code class='hash'>{_e(e['prev_hash'])}</code>",
            f"<code class='hash'>{_e(e['hash'])}</code>",
        ]
        for e in report["audit_events"]
    ]
    return [
        "<h2 id='audit-events'>Audit events</h2>",
        "<p class='muted'>Each hash is SHA-256 of the previous hash and the event's canonical JSON.</p>",
        _table(
            ["#", "Time", "Actor", "Action", "Target", "Previous hash", "Hash"],
            rows,
            cls="audit",
            widths=(5, 12, 11, 12, 14, 23, 23),
        ),
    ]


def to_html(document: dict[str, Any]) -> str:
    """The whole report as one page."""
    report = document["report"]
    name = f"{report['model']}@{report['version']}"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Report: {_e(name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Model version {_e(name)}</h1>",
        f"<p>Workspace {_e(report['workspace'])}; stage {_e(report['stage'])}; artifact SHA-256 "
        f"<code>{_e(report['artifact_sha256'])}</code>; generated {_e(report['generated_at'])}; signed with "
        f"key {_e(report['key_id'])}.</p>",
        "<nav><a href='#model-card'>Model card</a> · <a href='#datasheets'>Datasheets</a> · "
        "<a href='#fairness'>Fairness</a> · <a href='#explanation'>Explanation</a> · "
        "<a href='#gate-decisions'>Gate decisions</a> · <a href='#reviews'>Reviews</a> · "
        "<a href='#provenance'>Provenance</a> · <a href='#audit-events'>Audit events</a> · "
        "<a href='#verification'>Verification</a></nav>",
        "<h2 id='model-card'>Model card</h2>",
    ]
    card = report["model_card"]
    parts += _sheet(card, "Model card") if card else ["<p class='fail'>No model card.</p>"]
    parts.append("<h2 id='datasheets'>Training data's datasheets</h2>")
    for sheet in report["datasheets"]:
        parts += _sheet(sheet, "Datasheet")
    if not report["datasheets"]:
        parts.append("<p class='muted'>No training dataset is recorded.</p>")
    for section in (_fairness, _explanation, _decisions, _requests, _provenance, _audit):
        parts += section(report)
    parts.append(
        "<h2 id='verification'>Verification</h2><p>The JSON bundle this page was drawn from is signed "
        f"(Ed25519, key {_e(document['key_id'])}); check it offline with <code>mlgov verify-report "
        "report.json --public-key key.json</code>, which also names any section below that no longer "
        "matches its digest.</p>"
    )
    parts.append(
        _table(
            ["Section", "SHA-256 of its canonical JSON"],
            ([_e(k), f"<code class='hash'>{_e(v)}</code>"] for k, v in report["sections"].items()),
        )
    )
    parts.append(f"<p>Signature: <code class='hash'>{_e(document['signature'])}</code></p></body></html>")
    return "".join(p for p in parts if p)
