"""The SVG charts: a bar for each group with its interval and size, a bar for each important feature,
and the provenance graph with a box for each node and an arrow for each edge; labels escaped, the
same sections drawn to the same bytes."""

from __future__ import annotations

import re

from defusedxml import ElementTree as ET

from governance.reports import charts

SVG = "{http://www.w3.org/2000/svg}"


def _assessment(*groups):
    return {
        "metric": "selection_rate",
        "sensitive_features": ["sex"],
        "bootstrap": {"resamples": 50, "level": 0.95},
        "groups": list(groups),
    }


def _group(label, size, value, low=None, high=None, *, reference=False, eligible=True):
    return {
        "group": label,
        "size": size,
        "reference": reference,
        "eligible": eligible,
        "metric": {"value": value, "low": low, "high": high},
    }


def _texts(svg):
    return [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_the_fairness_chart_draws_each_group_with_its_size_and_interval():
    svg = charts.fairness_chart(
        _assessment(
            _group("sex=0", 298, 0.59, 0.54, 0.66, reference=True),
            _group("sex=1", 302, 0.6, 0.55, 0.64),
            _group("sex=<2>", 3, None, eligible=False),
        )
    )
    texts = _texts(svg)
    assert texts[0] == "selection rate by sex"
    assert {
        "sex=0 (n=298), reference",
        "sex=1 (n=302)",
        "sex=<2> (n=3)",
        "not measured",
        "0.59",
        "0.6",
    } <= set(texts)
    root = ET.fromstring(svg)
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("height") == "14"]
    assert len(bars) == 2
    whiskers = [line for line in root.iter(f"{SVG}line") if line.get("stroke-width") == "1.5"]
    assert len(whiskers) == 2 * 3  # each interval: its line and two end caps
    assert "sex=&lt;2&gt;" in svg


def test_a_negative_value_draws_left_of_zero():
    svg = charts.bar_chart("r2", [charts.Bar("a", -0.5), charts.Bar("b", 0.5)], "r2")
    zero = next(
        float(line.get("x1"))
        for line in ET.fromstring(svg).iter(f"{SVG}line")
        if line.get("stroke") == charts.MUTED
    )
    bars = [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if r.get("height") == "14"]
    assert float(bars[0].get("x")) + float(bars[0].get("width")) == zero
    assert float(bars[1].get("x")) == zero


def test_the_provenance_graph_draws_a_box_for_each_node_and_an_arrow_for_each_edge():
    graph = {
        "root": 1,
        "nodes": [
            {"id": 1, "kind": "ModelVersion", "key": "income@1", "depth": 0},
            {"id": 2, "kind": "Run", "key": "train-1", "depth": 1},
            {"id": 3, "kind": "DatasetVersion", "key": "adult@v1", "depth": 1},
            {"id": 4, "kind": "Commit", "key": "3f2a9c1", "depth": 2},
        ],
        "edges": [
            {"src": 2, "dst": 1, "kind": "PRODUCED"},
            {"src": 1, "dst": 3, "kind": "TRAINED_ON"},
            {"src": 2, "dst": 3, "kind": "USED"},  # within one column: a curve
            {"src": 2, "dst": 4, "kind": "BUILT_FROM"},
        ],
    }
    svg = charts.provenance_chart(graph)
    root = ET.fromstring(svg)
    boxes = [r for r in root.iter(f"{SVG}rect") if r.get("rx") == "4"]
    assert len(boxes) == 4
    assert len(list(root.iter(f"{SVG}polygon"))) == 4  # an arrowhead for each edge
    assert len(list(root.iter(f"{SVG}path"))) == 1
    texts = _texts(svg)
    assert {"income@1", "train-1", "adult@v1", "3f2a9c1", "PRODUCED", "USED", "BUILT_FROM"} <= set(texts)
    # The version in the rightmost column, what it comes from to its left.
    x = {t.text: float(t.get("x")) for t in root.iter(f"{SVG}text")}
    assert x["3f2a9c1"] < x["train-1"] < x["income@1"]
    assert charts.provenance_chart(graph) == svg  # the same graph, the same bytes


def test_a_long_label_is_shortened_to_fit_and_the_size_is_declared():
    svg = charts.bar_chart("t", [charts.Bar("x" * 200, 1.0)], "axis")
    (label,) = [t for t in _texts(svg) if t.startswith("x")]
    assert label.endswith("…")
    assert len(label) < 60
    width, height = charts.svg_size(svg)
    assert width == charts.WIDTH
    assert re.search(rf'viewBox="0 0 {charts.WIDTH} {height:g}"', svg)
