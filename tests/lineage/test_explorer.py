"""The lineage explorer page: its audit trail is the audit log's, shown only to those who read it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from core.actors import Actor
from core.audit import audit_append
from tests.lineage.helpers import node_id, record

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
