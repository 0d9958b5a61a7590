"""The audit log of a period, exported signed and verified offline (`mlgov verify-audit-export`): the
untouched export verifies; an edited event, a dropped one, a broken link into the chain or another
key are each named; the API names a bad period's field."""

from __future__ import annotations

import copy
import json
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from core import signing
from core.actors import Actor
from core.audit import audit_append
from core.audit_export import audit_export
from core.models import AuditEvent
from mlgov.cli import main as mlgov_main
from mlgov.verify import verify_audit_export
from tests.conftest import bearer
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def _append(workspace, ada, n: int, label: str) -> None:
    for i in range(n):
        audit_append(workspace=workspace, actor=Actor(user=ada), action="test.event", target=f"{label}:{i}")


@pytest.fixture
def exported(acme, ada):
    _append(acme, ada, 3, "before")
    time.sleep(0.01)
    since = timezone.now()
    _append(acme, ada, 5, "during")
    until = timezone.now()
    time.sleep(0.01)
    _append(acme, ada, 2, "after")
    acme.refresh_from_db()
    return audit_export(workspace=acme, since=since, until=until)


def _key() -> str:
    return signing.public_key_document()["public_key"]


def test_the_period_and_only_it_is_exported_and_verifies(exported, acme):
    export = exported["export"]
    assert [e["document"]["target"] for e in export["events"]] == [f"during:{i}" for i in range(5)]
    first = export["events"][0]["document"]["seq"]
    assert export["before"]["seq"] == first - 1
    assert export["before"]["hash"] == AuditEvent.objects.get(workspace=acme, seq=first - 1).hash
    assert export["head"]["seq"] == acme.audit_head_seq
    assert verify_audit_export(exported, _key()) == []


def test_an_edited_or_dropped_event_a_broken_link_or_another_key_is_named(exported):
    edited = copy.deepcopy(exported)
    edited["export"]["events"][2]["document"]["target"] = "during:changed"
    problems = verify_audit_export(edited, _key())
    seq = edited["export"]["events"][2]["document"]["seq"]
    assert f"audit event {seq}: its content does not match its hash" in problems
    assert any("signature does not match" in p for p in problems)

    dropped = copy.deepcopy(exported)
    del dropped["export"]["events"][1]
    problems = verify_audit_export(dropped, _key())
    assert f"events {seq - 1} to {seq - 1} are missing from the export" in problems
    assert "the export says 5 events but holds 4" in problems

    relinked = copy.deepcopy(exported)
    relinked["export"]["before"]["hash"] = "0" * 64
    assert any("its previous hash is not event" in p for p in verify_audit_export(relinked, _key()))

    other = signing.public_key_document()["public_key"][::-1]
    assert any("signature does not match" in p for p in verify_audit_export(exported, other))


def test_the_commands_save_and_verify_an_export(exported, tmp_path, capsys):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(signing.public_key_document()))
    saved = tmp_path / "audit.json"
    saved.write_text(json.dumps(exported))
    assert mlgov_main(["verify-audit-export", str(saved), "--public-key", str(key)]) == 0
    assert capsys.readouterr().out.startswith("valid: audit log of acme from ")
    broken = copy.deepcopy(exported)
    broken["export"]["events"][0]["document"]["payload"] = {"x": 1}
    saved.write_text(json.dumps(broken))
    assert mlgov_main(["verify-audit-export", str(saved), "--public-key", str(key)]) == 1
    assert "its content does not match its hash" in capsys.readouterr().err


def test_the_api_exports_for_auditors_and_names_a_bad_period(acme, ada, settings):
    client = bearer(make_token(acme, ada, ["audit:read"]))
    url = reverse("audit-export")
    now = timezone.now().isoformat()
    answer = client.get(url, {"since": "2026-01-01T00:00:00Z", "until": now})
    assert answer.status_code == 200
    assert verify_audit_export(answer.json(), _key()) == []
    backwards = client.get(url, {"since": now, "until": "2026-01-01T00:00:00Z"})
    assert backwards.status_code == 400
    assert backwards.json()["errors"][0]["field"] == "until"
    assert client.get(url, {"since": "yesterday", "until": now}).json()["errors"][0]["field"] == "since"
    settings.AUDIT_EXPORT_MAX_EVENTS = 1
    too_many = client.get(url, {"since": "2026-01-01T00:00:00Z", "until": now})
    assert too_many.status_code == 400
    assert "shorter periods" in too_many.json()["detail"]
    assert (
        bearer(make_token(acme, ada, ["model:read"])).get(url, {"since": now, "until": now}).status_code
        == 403
    )
