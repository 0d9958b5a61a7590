"""The lineage explorer page: the graph it hands the browser, the side panel (properties as text, the
node's file, and the audit trail, which is the audit log's and shown only to those who read it), and
keys from users escaped wherever the server writes them."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from core.actors import Actor
from core.audit import audit_append
from core.roles import ROLE_SCOPES, Role
from lineage.kinds import SOURCE_IS_UPSTREAM
from tests.factories import make_artifact
from tests.lineage.helpers import build_training_graph, node_id, record

HOSTILE = '<a href="https://evil.example/">click me</a><b>bold</b>'

pytestmark = pytest.mark.django_db


def _browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_trail_names_the_node_exactly_and_only_for_audit_readers(acme, alice, carol):
    record(acme, alice, {"type": "node", "kind": "DatasetVersion", "key": "q"})
    audit_append(workspace=acme, actor=Actor(user=alice), action="budget.set", target="dataset:q", payload={})
    # Another target that merely ends with the node's key is not about the node.
    audit_append(
        workspace=acme, actor=Actor(user=alice), action="token.create", target="token:zzq", payload={}
    )
    url = reverse(
        "dashboard-lineage-node", kwargs={"slug": "acme", "node_id": node_id(acme, "DatasetVersion", "q")}
    )

    auditor_page = _browser(carol).get(url).content.decode()
    assert "budget.set" in auditor_page
    assert "token.create" not in auditor_page

    scientist_page = _browser(alice).get(url)  # lineage:read, no audit:read
    assert scientist_page.status_code == 200
    text = scientist_page.content.decode()
    assert 'id="node-trail"' not in text
    assert "budget.set" not in text


def test_a_bad_depth_is_a_400_not_a_crash(acme, alice):
    record(acme, alice, {"type": "node", "kind": "Dataset", "key": "d"})
    url = reverse("dashboard-lineage-node", kwargs={"slug": "acme", "node_id": node_id(acme, "Dataset", "d")})
    client = _browser(alice)
    assert client.get(url, {"depth": "abc"}).status_code == 400
    assert client.get(url, {"depth": "99"}).status_code == 200  # capped at 10


def _page_url(workspace, kind: str, key: str) -> str:
    return reverse(
        "dashboard-lineage-node", kwargs={"slug": "acme", "node_id": node_id(workspace, kind, key)}
    )


def _graph(response) -> dict:
    return json.loads(
        re.search(r'id="explorer-config"[^>]*>(.*?)</script>', response.content.decode(), re.S)[1]
    )["graph"]


def test_the_page_hands_the_browser_both_walks_without_properties(acme, alice):
    build_training_graph(acme, alice)
    response = _browser(alice).get(_page_url(acme, "ModelVersion", "income@1"), {"depth": "1"})
    graph = _graph(response)
    assert graph["root"] == node_id(acme, "ModelVersion", "income@1")
    # One step each way: the run that produced it, its model, the data it was trained on (upstream);
    # its deployment and the explanation that assesses it (downstream).
    assert {n["key"] for n in graph["nodes"]} == {"income@1", "r1", "income", "adult@v2", "prod", "expl-1"}
    assert all(set(n) == {"id", "kind", "key", "name"} for n in graph["nodes"])
    assert {e["kind"] for e in graph["edges"]} == {
        "USED",  # r1 read adult@v2: both ends are in the graph
        "PRODUCED",
        "VERSION_OF",
        "TRAINED_ON",
        "DEPLOYED_AS",
        "ASSESSES",
    }
    assert set(graph["source_is_upstream"]) == set(SOURCE_IS_UPSTREAM)
    assert graph["truncated"] is False


def test_properties_show_as_json_text_not_a_python_dict(acme, alice):
    record(
        acme,
        alice,
        {
            "type": "node",
            "kind": "Dataset",
            "key": "d",
            "properties": {"ok": True, "gone": None, "cols": ["a", "b"]},
        },
    )
    text = _browser(alice).get(_page_url(acme, "Dataset", "d")).content.decode()
    table = text[text.index('id="node-properties"') :]
    assert '<th scope="row">ok</th><td><pre>true</pre>' in table
    assert "<pre>null</pre>" in table
    assert "&quot;a&quot;" in table  # the list as indented JSON: ["a", "b"]
    assert "True" not in table
    assert "None" not in table


def test_a_key_holding_html_is_text_in_the_page_and_the_panel(acme, alice):
    record(
        acme,
        alice,
        {"type": "node", "kind": "DatasetVersion", "key": "v"},
        {
            "type": "edge",
            "kind": "VERSION_OF",
            "src": {"kind": "DatasetVersion", "key": "v"},
            "dst": {"kind": "Dataset", "key": HOSTILE},
        },
    )
    client = _browser(alice)
    page = client.get(_page_url(acme, "DatasetVersion", "v")).content.decode()
    panel = client.get(_page_url(acme, "Dataset", HOSTILE), {"part": "panel"}).content.decode()
    for html in (page, panel):
        assert '<a href="https://evil' not in html
        assert "<b>" not in html
    assert "&lt;a href=&quot;https://evil.example/&quot;&gt;click me&lt;/a&gt;" in panel
    assert HOSTILE in {n["key"] for n in _graph(client.get(_page_url(acme, "DatasetVersion", "v")))["nodes"]}


def test_the_panel_of_a_node_is_a_fragment_with_a_link_to_its_page(acme, alice):
    record(acme, alice, {"type": "node", "kind": "Run", "key": "r", "properties": {"state": "COMPLETE"}})
    url = _page_url(acme, "Run", "r")
    panel = _browser(alice).get(url, {"part": "panel"})
    assert panel.status_code == 200
    text = panel.content.decode()
    assert "<html" not in text
    assert f'href="{url}"' in text
    assert "COMPLETE" in text


def test_the_panel_trail_is_only_for_audit_readers(acme, alice, carol):
    record(acme, alice, {"type": "node", "kind": "DatasetVersion", "key": "q"})
    audit_append(workspace=acme, actor=Actor(user=alice), action="budget.set", target="dataset:q", payload={})
    url = _page_url(acme, "DatasetVersion", "q")
    assert "budget.set" in _browser(carol).get(url, {"part": "panel"}).content.decode()
    scientist = _browser(alice).get(url, {"part": "panel"}).content.decode()
    assert 'id="node-trail"' not in scientist
    assert "budget.set" not in scientist


def test_the_file_is_described_and_downloadable_only_with_artifact_read(acme, alice, carol, monkeypatch):
    data = make_artifact(acme, alice, b"a,b\n1,2\n", "adult.csv")
    record(
        acme, alice, {"type": "node", "kind": "DatasetVersion", "key": "adult@v1", "artifact": str(data.pk)}
    )
    url = _page_url(acme, "DatasetVersion", "adult@v1")
    download = f"/api/v1/artifacts/{data.pk}/content?workspace=acme"

    text = _browser(carol).get(url).content.decode()
    assert "adult.csv" in text
    assert data.sha256 in text
    assert data.media_type in text
    assert download in text
    assert _browser(carol).get(download).status_code == 200

    monkeypatch.setitem(ROLE_SCOPES, Role.AUDITOR, ROLE_SCOPES[Role.AUDITOR] - {"artifact:read"})
    text = _browser(carol).get(url).content.decode()
    assert data.sha256 in text
    assert download not in text


def test_a_node_of_another_workspace_has_no_panel(acme, alice, mallory):
    record(acme, alice, {"type": "node", "kind": "Dataset", "key": "secret"})
    url = reverse(
        "dashboard-lineage-node", kwargs={"slug": "umbrella", "node_id": node_id(acme, "Dataset", "secret")}
    )
    assert _browser(mallory).get(url, {"part": "panel"}).status_code == 404
