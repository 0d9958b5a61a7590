"""The report's bundle carries what a reviewer saw and an auditor checks: the model card and the
training data's datasheet with their revisions, fairness by group, the explanation's importance,
each gate decision with its rules' thresholds, the reviews, the provenance graph, the audit events
with their hashes, the charts, and a digest of each section."""

from __future__ import annotations

import hashlib

from defusedxml import ElementTree as ET

from core.canonical_json import canonical_bytes
from governance import reports
from governance.reports import formatting
from governance.reports.contents import SECTIONS, section_digest
from tests.governance.conftest import training_frame
from tests.governance.reports.conftest import CARD_TEXT, DATASHEET_TEXT, PARITY_MAX, REVIEW_COMMENT


def _fields(sheet):
    return {(s["name"], f["name"]): f["text"] for s in sheet["sections"] for f in s["fields"]}


def test_the_model_card_and_datasheet_are_there_section_by_section_with_revisions(evidenced):
    report = reports.bundle(evidenced)["report"]
    card = report["model_card"]
    assert card["subject"] == "income@1"
    assert card["revision"] == 2
    assert _fields(card)["model_details", "description"] == CARD_TEXT
    assert [s["name"] for s in card["sections"]][:2] == ["model_details", "intended_use"]
    assert [(r["revision"], r["created_by"]) for r in card["revisions"]] == [(1, "alice"), (2, "alice")]
    assert "intended_use" in card["revisions"][1]["changed"]
    assert "model_details" in card["revisions"][1]["changed"]  # the description was added
    (sheet,) = report["datasheets"]
    assert (sheet["subject"], sheet["revision"]) == ("adult@v1", 1)
    assert _fields(sheet)["motivation", "purpose"] == DATASHEET_TEXT
    motivation = next(s for s in sheet["sections"] if s["name"] == "motivation")
    assert (motivation["filled"], motivation["of"], motivation["missing"]) == (2, 3, ["funding"])


def test_fairness_holds_each_groups_size_positives_metric_and_difference_with_intervals(evidenced):
    (assessment,) = reports.bundle(evidenced)["report"]["fairness"]
    frame = training_frame()
    assert assessment["sensitive_features"] == ["sex"]
    assert assessment["metric"] == "selection_rate"
    by_group = {g["group"]: g for g in assessment["groups"]}
    for sex, rows in frame.groupby("sex"):
        group = by_group[f"sex={sex}"]
        assert group["size"] == len(rows)
        assert group["positives"] == int(rows["label"].sum())
        metric = group["metric"]
        assert metric["low"] <= metric["value"] <= metric["high"]
    reference = [g for g in assessment["groups"] if g["reference"]]
    assert len(reference) == 1
    other = next(g for g in assessment["groups"] if not g["reference"])
    assert other["difference"]["low"] <= other["difference"]["value"] <= other["difference"]["high"]
    disparities = {d["name"]: d for d in assessment["disparities"]}
    assert disparities["demographic_parity_difference"]["high"] is not None
    assert assessment["bootstrap"]["resamples"] == 50


def test_the_explanation_lists_the_top_features_with_their_mean_absolute_shap(evidenced):
    explanation = reports.bundle(evidenced)["report"]["explanation"]
    assert explanation["rows"] == 600
    first = explanation["importance"][0]
    assert first["feature"] == "score"  # the label is a threshold on the score
    assert first["mean_abs_shap"] > 0
    values = [i["mean_abs_shap"] for i in explanation["importance"]]
    assert values == sorted(values, reverse=True)


def test_each_rule_of_a_decision_carries_its_threshold_from_the_policy_revision(evidenced):
    decisions = reports.bundle(evidenced)["report"]["gate_decisions"]
    assert decisions
    decision = decisions[-1]
    rules = {rule["rule"]: (rule, written) for rule, written in formatting.decision_rules(decision)}
    parity, written = rules["parity"]
    assert written["parameters"] == {
        "metric": "demographic_parity_difference",
        "sensitive_feature": "sex",
        "max": PARITY_MAX,
    }
    assert parity["evidence"]["value"] is not None
    assert rules["accuracy"][1]["parameters"] == {"metric": "accuracy", "min": 0.7}
    assert formatting.parameters(rules["reviewers"][1]) == "count 2; role compliance_reviewer"
    assert decision["signature"]
    assert decision["key_id"]


def test_the_requests_carry_each_review_with_reviewer_time_decision_and_comment(evidenced):
    (request,) = reports.bundle(evidenced)["report"]["promotion_requests"]
    assert (request["stage"], request["requested_by"], request["comment"]) == (
        "production",
        "alice",
        "ready for production",
    )
    (review,) = request["reviews"]
    assert (review["reviewer"], review["decision"], review["comment"]) == ("bob", "approve", REVIEW_COMMENT)
    assert review["role"] == "compliance_reviewer"
    assert review["time"].startswith("20")


def test_the_provenance_graph_lists_directed_edges_between_its_nodes(evidenced):
    report = reports.bundle(evidenced)["report"]
    graph = report["provenance_graph"]
    edges = {formatting.edge(e) for e in graph["edges"]}
    assert "income@1 --TRAINED_ON--> adult@v1" in edges
    assert "train-1 --PRODUCED--> income@1" in edges
    ids = {n["id"] for n in graph["nodes"]}
    assert all(e["src"] in ids and e["dst"] in ids for e in graph["edges"])
    assert graph["root"] == evidenced.node_id
    assert "entity" in report["provenance"]  # and the same as W3C PROV-JSON


def test_the_audit_events_rehash_and_include_the_datasheet_and_policy_events(evidenced):
    events = reports.bundle(evidenced)["report"]["audit_events"]
    for event in events:
        recomputed = hashlib.sha256(event["prev_hash"].encode() + canonical_bytes(event["document"]))
        assert recomputed.hexdigest() == event["hash"]
    targets = {e["document"]["target"] for e in events}
    assert {"model:income@1", "model_card:income@1", "datasheet:adult@v1"} <= targets
    assert "policy:production-readiness" in targets  # who set the thresholds, and when
    actions = [e["document"]["action"] for e in events]
    assert "promotion.approve" in actions


def test_charts_are_svg_drawn_from_the_sections_and_every_section_has_its_digest(evidenced):
    report = reports.bundle(evidenced)["report"]
    assert set(report["charts"]) == {"fairness:sex", "importance", "provenance"}
    for svg in report["charts"].values():
        assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
    assert "(n=" in report["charts"]["fairness:sex"]
    assert list(report["sections"]) == list(SECTIONS)
    assert all(report["sections"][name] == section_digest(report[name]) for name in SECTIONS)


def test_a_version_with_no_evidence_still_reports_what_is_missing(acme, registered):
    document = reports.bundle(registered)
    report = document["report"]
    assert report["model_card"] is None
    assert report["datasheets"] == [{"kind": "datasheet", "subject": "adult@v1", "revision": None}]
    assert (report["fairness"], report["explanation"], report["promotion_requests"]) == ([], None, [])
    assert set(report["charts"]) == {"provenance"}
    assert "No model card." in reports.to_html(document)
    assert reports.to_pdf(document).startswith(b"%PDF")
