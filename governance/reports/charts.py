"""The report's charts as SVG, drawn here in Python from the report's own sections: fairness by group,
the explanation's importance, and the provenance graph. One SVG text serves the PDF (fpdf2 places it
as vector graphics) and the HTML page (a data: URI), and it is part of the signed report.

Only what fpdf2's SVG renderer draws is used: rect, line, polygon and text (with text-anchor), no
markers, no CSS. The output is deterministic (same sections, same bytes), and every label from the
data is XML-escaped. Text widths are estimated (0.6 em a character) to shorten labels that would
overflow their box; the full names are in the report's lists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
WIDTH = 720
INK, MUTED, ACCENT, FAINT = "#1f2933", "#6b7280", "#1f5fbf", "#b8c0cc"
CHAR_EM = 0.6  # estimated advance of an average character, in em


def _number(value: float) -> str:
    """A coordinate as SVG text: two decimals at most, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _fit(text: str, width: float, size: float) -> str:
    """`text`, shortened with an ellipsis to about `width` units at font `size`."""
    room = max(int(width / (size * CHAR_EM)), 1)
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


def _text(
    x: float, y: float, content: str, *, size: float = 11, anchor: str = "start", bold: bool = False
) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{_number(x)}" y="{_number(y)}" font-family="{FONT}" font-size="{_number(size)}"{weight} '
        f'text-anchor="{anchor}" fill="{INK}">{escape(content)}</text>'
    )


def _svg(width: float, height: float, title: str, body: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_number(width)}" height="{_number(height)}" '
        f'viewBox="0 0 {_number(width)} {_number(height)}" role="img" aria-label={quoteattr(title)}>'
        f'<rect x="0" y="0" width="{_number(width)}" height="{_number(height)}" fill="#ffffff"/>'
        + _text(12, 22, title, size=13, bold=True)
        + "".join(body)
        + "</svg>"
    )


def svg_size(svg: str) -> tuple[float, float]:
    """The width and height an SVG of this module declares."""
    found = re.search(r'<svg[^>]* width="([\d.]+)" height="([\d.]+)"', svg)
    if found is None:
        raise ValueError("not an SVG drawn by governance.reports.charts")
    return float(found[1]), float(found[2])


def sig(value: float | None, digits: int = 4) -> str:
    """About four significant digits, as the dashboard shows numbers; blank for none."""
    if value is None:
        return ""
    if math.isnan(value):
        return "n/a"
    return f"{value:.{digits}g}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values spanning [low, high]."""
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(count + 2) if first + i * step <= high + 1e-9]


# --- horizontal bars with intervals -------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One row of a bar chart: its label, value and interval (when there is one)."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    muted: bool = False  # drawn grey: a group left out of the disparities
    emphasis: bool = False  # drawn dark: the reference group


def bar_chart(title: str, bars: Sequence[Bar], axis: str) -> str:
    """Horizontal bars, one per row, with the interval as a whisker and the value at the right."""
    label_width, value_width, row, top = 250.0, 64.0, 24.0, 40.0
    left, right = label_width + 8, WIDTH - value_width - 8
    numbers = [n for b in bars for n in (b.value, b.low, b.high) if n is not None and math.isfinite(n)]
    low, high = min([0.0, *numbers]), max([0.0, *numbers])
    if high - low < 1e-12:
        high = low + 1.0
    ticks = _ticks(low, high)
    low, high = min(low, ticks[0]), max(high, ticks[-1])

    def x(value: float) -> float:
        return left + (value - low) / (high - low) * (right - left)

    height = top + row * max(len(bars), 1) + 44
    body: list[str] = []
    axis_y = top + row * max(len(bars), 1) + 4
    for tick in ticks:
        body.append(
            f'<line x1="{_number(x(tick))}" y1="{_number(top - 4)}" x2="{_number(x(tick))}" '
            f'y2="{_number(axis_y)}" stroke="#e5e7eb" stroke-width="1"/>'
        )
        body.append(_text(x(tick), axis_y + 14, sig(tick), size=10, anchor="middle"))
    body.append(
        f'<line x1="{_number(x(0))}" y1="{_number(top - 4)}" x2="{_number(x(0))}" y2="{_number(axis_y)}" '
        f'stroke="{MUTED}" stroke-width="1"/>'
    )
    body.append(_text((left + right) / 2, axis_y + 32, axis, size=10, anchor="middle"))
    for index, bar in enumerate(bars):
        middle = top + row * index + row / 2
        body.append(_text(label_width, middle + 4, _fit(bar.label, label_width - 12, 11), anchor="end"))
        if bar.value is None or not math.isfinite(bar.value):
            body.append(_text(left + 4, middle + 4, "not measured", size=10))
            continue
        colour = FAINT if bar.muted else ("#0b2f6b" if bar.emphasis else ACCENT)
        start, end = sorted((x(0), x(bar.value)))
        body.append(
            f'<rect x="{_number(start)}" y="{_number(middle - 7)}" width="{_number(max(end - start, 1))}" '
            f'height="14" fill="{colour}"/>'
        )
        if bar.low is not None and bar.high is not None:
            a, b = x(bar.low), x(bar.high)
            body.append(
                f'<line x1="{_number(a)}" y1="{_number(middle)}" x2="{_number(b)}" y2="{_number(middle)}" '
                f'stroke="{INK}" stroke-width="1.5"/>'
            )
            for end_x in (a, b):
                body.append(
                    f'<line x1="{_number(end_x)}" y1="{_number(middle - 5)}" x2="{_number(end_x)}" '
                    f'y2="{_number(middle + 5)}" stroke="{INK}" stroke-width="1.5"/>'
                )
        body.append(_text(WIDTH - 8, middle + 4, sig(bar.value), size=10, anchor="end"))
    return _svg(WIDTH, height, title, body)


def fairness_chart(assessment: Mapping[str, Any]) -> str:
    """The assessment's headline metric for each group, with its interval and the group's size."""
    metric = assessment["metric"]
    bars = [
        Bar(
            label=f"{g['group']} (n={g['size']})" + (", reference" if g["reference"] else ""),
            value=(g.get("metric") or {}).get("value"),
            low=(g.get("metric") or {}).get("low"),
            high=(g.get("metric") or {}).get("high"),
            muted=not g["eligible"],
            emphasis=g["reference"],
        )
        for g in assessment["groups"]
    ]
    features = ", ".join(assessment["sensitive_features"])
    level = (assessment.get("bootstrap") or {}).get("level")
    interval = f", {level} interval" if level and (assessment.get("bootstrap") or {}).get("resamples") else ""
    return bar_chart(f"{metric.replace('_', ' ')} by {features}", bars, f"{metric}{interval}")


def importance_chart(explanation: Mapping[str, Any]) -> str:
    """Mean |SHAP| of the most important features, most important first."""
    bars = [Bar(item["feature"], item["mean_abs_shap"]) for item in explanation["importance"]]
    output = f" (output {explanation['output']})" if explanation.get("output") else ""
    return bar_chart(f"Feature importance{output}", bars, "mean |SHAP value|")


# --- the provenance graph -----------------------------------------------------------------------------

MAX_DRAWN_NODES = 60
BOX_HEIGHT, ROW_GAP = 38.0, 20.0
Point = tuple[float, float]


def _columns(graph: Mapping[str, Any]) -> list[list[Mapping[str, Any]]]:
    """The nodes drawn, in columns by distance from the version (nearest first), each column ordered
    by where its neighbours in the column before it sit, so that edges cross less."""
    nodes = sorted(graph["nodes"], key=lambda n: (n["depth"], n["kind"], n["key"]))[:MAX_DRAWN_NODES]
    neighbours: dict[int, set[int]] = {n["id"]: set() for n in nodes}
    for edge in graph["edges"]:
        if edge["src"] in neighbours and edge["dst"] in neighbours:
            neighbours[edge["src"]].add(edge["dst"])
            neighbours[edge["dst"]].add(edge["src"])
    columns: list[list[Mapping[str, Any]]] = []
    rank: dict[int, float] = {}
    for depth in sorted({n["depth"] for n in nodes}):
        column = [n for n in nodes if n["depth"] == depth]
        for node in column:
            placed = [rank[i] for i in neighbours[node["id"]] if i in rank]
            rank[node["id"]] = sum(placed) / len(placed) if placed else math.inf
        column.sort(key=lambda n: (rank[n["id"]], n["kind"], n["key"]))
        rank.update({node["id"]: float(index) for index, node in enumerate(column)})
        columns.append(column)
    return columns


def _clip(centre: Point, towards: Point, half: Point) -> Point:
    """Where the segment from a box's centre towards a point leaves the box."""
    (cx, cy), (tx, ty), (hw, hh) = centre, towards, half
    dx, dy = tx - cx, ty - cy
    scale = min(hw / abs(dx) if dx else math.inf, hh / abs(dy) if dy else math.inf, 1.0)
    return cx + dx * scale, cy + dy * scale


def _arrow(start: Point, end: Point, control: Point | None, kind: str) -> list[str]:
    """An edge: a line (or, between boxes of one column, a curve through `control`), its head at
    `end`, and its kind on a white ground halfway along."""
    towards = control if control is not None else start
    length = math.dist(towards, end) or 1.0
    ux, uy = (end[0] - towards[0]) / length, (end[1] - towards[1]) / length
    back = (end[0] - 8 * ux, end[1] - 8 * uy)
    if control is None:
        line = (
            f'<line x1="{_number(start[0])}" y1="{_number(start[1])}" x2="{_number(back[0])}" '
            f'y2="{_number(back[1])}" stroke="{MUTED}" stroke-width="1.2"/>'
        )
        middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    else:
        line = (
            f'<path d="M {_number(start[0])} {_number(start[1])} Q {_number(control[0])} '
            f'{_number(control[1])} {_number(back[0])} {_number(back[1])}" fill="none" stroke="{MUTED}" '
            'stroke-width="1.2"/>'
        )
        # The label near the curve's start: its middle lies where the edges between columns pass.
        t = 0.2
        middle = (
            (1 - t) ** 2 * start[0] + 2 * (1 - t) * t * control[0] + t**2 * end[0] + len(kind) * 2.2,
            (1 - t) ** 2 * start[1] + 2 * (1 - t) * t * control[1] + t**2 * end[1],
        )
    wing = [(back[0] - 4 * uy, back[1] + 4 * ux), (back[0] + 4 * uy, back[1] - 4 * ux)]
    points = " ".join(f"{_number(px)},{_number(py)}" for px, py in [end, *wing])
    label_width = len(kind) * 7.5 * CHAR_EM + 4
    return [
        line,
        f'<polygon points="{points}" fill="{MUTED}"/>',
        f'<rect x="{_number(middle[0] - label_width / 2)}" y="{_number(middle[1] - 6)}" '
        f'width="{_number(label_width)}" height="9" fill="#ffffff" fill-opacity="0.85"/>',
        _text(middle[0], middle[1] + 1.5, kind, size=7.5, anchor="middle"),
    ]


def provenance_chart(graph: Mapping[str, Any]) -> str:
    """The version (right) and everything upstream of it in columns by distance, each edge an arrow
    from its source to its target labelled with its kind."""
    columns = _columns(graph)
    tallest = max((len(c) for c in columns), default=1)
    top, pad, step = 44.0, 12.0, BOX_HEIGHT + ROW_GAP
    column_width = (WIDTH - 2 * pad) / max(len(columns), 1)
    box_width = min(column_width * 0.64, 200.0)
    half = (box_width / 2, BOX_HEIGHT / 2)
    centre: dict[int, Point] = {}
    for position, column in enumerate(reversed(columns)):  # the farthest upstream on the left
        offset = (tallest - len(column)) * step / 2
        for index, node in enumerate(column):
            x = pad + column_width * position + column_width / 2
            centre[node["id"]] = (x, top + offset + index * step + BOX_HEIGHT / 2)
    body: list[str] = []
    for edge in graph["edges"]:
        a, b = centre.get(edge["src"]), centre.get(edge["dst"])
        if a is None or b is None:
            continue
        if abs(a[0] - b[0]) < 1:  # one column: a curve out to the right of it, not through the boxes
            bulge = half[0] + 14 + abs(a[1] - b[1]) * 0.25
            start, end = (a[0] + half[0], a[1]), (b[0] + half[0], b[1])
            body += _arrow(start, end, (a[0] + bulge, (a[1] + b[1]) / 2), edge["kind"])
        else:
            body += _arrow(_clip(a, b, half), _clip(b, a, half), None, edge["kind"])
    for column in columns:
        for node in column:
            cx, cy = centre[node["id"]]
            root = node["id"] == graph["root"]
            body.append(
                f'<rect x="{_number(cx - half[0])}" y="{_number(cy - half[1])}" '
                f'width="{_number(box_width)}" height="{_number(BOX_HEIGHT)}" rx="4" ry="4" '
                f'fill="{"#dbe7fb" if root else "#f3f5f9"}" stroke="{ACCENT if root else MUTED}" '
                f'stroke-width="{"2" if root else "1"}"/>'
            )
            body.append(_text(cx, cy - 2, _fit(node["key"], box_width - 10, 11), size=11, anchor="middle"))
            body.append(_text(cx, cy + 12, node["kind"], size=8.5, anchor="middle"))
    left_out = len(graph["nodes"]) - sum(len(c) for c in columns)
    title = "Provenance: where the version comes from (arrows point from source to target)"
    if left_out > 0:
        title += f"; {left_out} more nodes in the list"
    height = top + tallest * step + 8
    return _svg(WIDTH, height, title, body)


def report_charts(report: Mapping[str, Any]) -> dict[str, str]:
    """Every chart of a report, by name: `fairness:<features>`, `importance`, `provenance`."""
    charts = {f"fairness:{','.join(a['sensitive_features'])}": fairness_chart(a) for a in report["fairness"]}
    explanation = report.get("explanation")
    if explanation and explanation["importance"]:
        charts["importance"] = importance_chart(explanation)
    charts["provenance"] = provenance_chart(report["provenance_graph"])
    return charts
