"""Rows written past the chain's head, and signed checkpoints that catch even a rewrite of the whole
table by someone with database access."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from core import signing
from core.actors import Actor
from core.audit import audit_append, audit_verify, event_document, event_hash
from core.models import GENESIS_HASH, ApiToken, AuditCheckpoint, AuditEvent, Workspace
from core.tasks import audit_checkpoints_task
from mlgov.audit import chain_walk, checkpoint_problems
from tests.conftest import bearer, mlgov, session
from tests.factories import make_token

pytestmark = pytest.mark.django_db


def _append(workspace, user, n):
    for i in range(n):
        audit_append(workspace=workspace, actor=Actor(user=user), action="test.event", payload={"i": i})


def _forge(workspace, seq):
    """A row inserted past the service, as a database user could (the trigger allows INSERT)."""
    return AuditEvent.objects.create(
        workspace=workspace,
        seq=seq,
        created_at=timezone.now(),
        actor="user:mallory",
        action="forged",
        payload={},
        prev_hash="0",
        hash="0",
    )


def _as_dba(statements):
    """Run SQL as an administrator who switches the append-only trigger off for the session."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        for sql, params in statements:
            cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def _rewrite_history(workspace, seq, payload):
    """Change one event and recompute every later hash and the head: a chain that is consistent with
    itself, as a database administrator could rebuild it."""
    events = list(AuditEvent.objects.filter(workspace=workspace).order_by("seq"))
    prev, statements = GENESIS_HASH, []
    for event in events:
        if event.seq == seq:
            event.payload = payload
        event.prev_hash, event.hash = prev, event_hash(prev, event_document(event))
        prev = event.hash
        statements.append(
            (
                "UPDATE core_auditevent SET payload = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [json.dumps(event.payload), event.prev_hash, event.hash, event.id],
            )
        )
    _as_dba(statements)
    Workspace.objects.filter(pk=workspace.pk).update(audit_head_hash=prev)


def test_a_forged_row_past_the_head_breaks_verification(acme, alice, carol, capsys):
    _append(acme, alice, 3)
    _forge(acme, 999_999)
    report = audit_verify(workspace=acme)
    assert not report.intact
    assert report.broken_at == 999_999
    assert "1 event past the recorded head (5), from seq 999999" in report.reason
    with pytest.raises(CommandError):
        call_command("audit_verify", "--workspace", "acme")
    assert "not written by the service" in capsys.readouterr().out
    assert session(carol).get(reverse("audit-verify")).json()["intact"] is False


def test_a_head_whose_hash_is_not_the_last_events_is_reported(acme, alice):
    _append(acme, alice, 2)
    Workspace.objects.filter(pk=acme.pk).update(audit_head_hash="f" * 64)
    report = audit_verify(workspace=acme)
    assert (report.intact, report.reason) == (False, "the last event's hash is not the hash the head records")


def test_a_forged_row_at_the_next_seq_makes_writes_a_409_that_changes_nothing(acme, ada, alice):
    acme.refresh_from_db()
    _forge(acme, acme.audit_head_seq + 1)
    tokens = ApiToken.objects.count()
    response = session(ada, acme).post(
        reverse("token-list"), {"name": "t", "scopes": ["workspace:read"]}, format="json"
    )
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Audit chain broken"
    assert "lies at seq" in response.json()["detail"]
    assert ApiToken.objects.count() == tokens
    assert not AuditEvent.objects.filter(action="token.create").exists()


def test_checkpoints_are_signed_on_demand_once_per_head_and_listed(acme, alice, carol):
    _append(acme, alice, 2)
    auditor = session(carol, acme)
    first = auditor.post(reverse("audit-checkpoint-list"))
    assert first.status_code == 201, first.content
    document = first.json()
    acme.refresh_from_db()
    assert document["statement"]["seq"] == acme.audit_head_seq
    assert document["statement"]["hash"] == acme.audit_head_hash
    assert signing.verify(
        document["statement"], document["signature"], signing.public_key_document()["public_key"]
    )
    again = auditor.post(reverse("audit-checkpoint-list"))
    assert (again.status_code, again.json()["id"]) == (200, document["id"])
    listed = auditor.get(reverse("audit-checkpoint-list")).json()
    assert [c["id"] for c in listed["results"]] == [document["id"]]
    # A data scientist has no audit:read.
    assert (
        bearer(make_token(acme, alice, ["model:read"])).post(reverse("audit-checkpoint-list")).status_code
        == 403
    )


def test_a_broken_chain_is_not_certified(acme, alice, carol):
    _append(acme, alice, 2)
    _forge(acme, 50)
    response = session(carol, acme).post(reverse("audit-checkpoint-list"))
    assert response.status_code == 409
    assert "not certified" in response.json()["detail"]
    assert not AuditCheckpoint.objects.exists()


def test_the_periodic_task_certifies_only_chains_that_moved(acme, umbrella, alice):
    assert audit_checkpoints_task() == 2  # acme and umbrella each have events
    assert audit_checkpoints_task() == 0
    _append(acme, alice, 1)
    assert audit_checkpoints_task() == 1
    acme.refresh_from_db()
    assert AuditCheckpoint.objects.filter(workspace=acme).first().seq == acme.audit_head_seq


def _walk(client, workspace, checkpoint):
    pages = []
    after = 0
    while after is not None:
        page = client.get(reverse("audit-chain"), {"after": after, "limit": 3}).json()
        pages.append(page)
        after = page["next_after"]
    check, last = chain_walk(pages, watch=[checkpoint["statement"]["seq"]])
    key = signing.public_key_document()["public_key"]
    return check.problems + checkpoint_problems(checkpoint, key, check, last["workspace_id"])


def test_a_rewrite_of_the_whole_table_is_caught_by_an_earlier_checkpoint(acme, alice, carol):
    _append(acme, alice, 6)
    auditor = session(carol, acme)
    checkpoint = auditor.post(reverse("audit-checkpoint-list")).json()
    _append(acme, alice, 2)
    assert _walk(auditor, acme, checkpoint) == []

    _rewrite_history(acme, 4, {"i": "rewritten"})
    # The database alone cannot tell: the rebuilt chain is consistent with itself...
    assert audit_verify(workspace=acme).intact
    # ...but it no longer passes through the hash the service signed.
    problems = _walk(auditor, acme, checkpoint)
    assert problems == [
        f"event {checkpoint['statement']['seq']} has another hash than the checkpoint certified: "
        "the chain was rewritten"
    ]
    file = {"statement": checkpoint["statement"], "signature": checkpoint["signature"]}
    assert call_command_problems(file, acme) == [
        f"event {checkpoint['statement']['seq']} has another hash than the checkpoint certified: "
        "the chain was rewritten"
    ]


def call_command_problems(document, workspace):
    from core.audit_checkpoints import audit_checkpoint_verify

    return audit_checkpoint_verify(document, workspace=workspace)


def test_a_checkpoint_with_an_edited_statement_or_of_another_workspace_fails(acme, umbrella, alice, carol):
    _append(acme, alice, 2)
    auditor = session(carol, acme)
    checkpoint = auditor.post(reverse("audit-checkpoint-list")).json()
    edited = {**checkpoint, "statement": {**checkpoint["statement"], "seq": 1}}
    assert _walk(auditor, acme, edited) == [
        "the checkpoint's signature does not match its statement and this key"
    ]
    assert call_command_problems(checkpoint, umbrella) == [
        "the checkpoint is for workspace 'acme', not 'umbrella'"
    ]


@pytest.mark.slow  # a live server and the `mlgov` command in subprocesses
def test_mlgov_verify_audit_against_saved_checkpoints(live_server, acme, alice, carol, tmp_path):
    _append(acme, alice, 4)
    token = make_token(acme, carol, ["audit:read"])
    saved = mlgov("audit-checkpoint", "--output", "cp.json", url=live_server.url, token=token, cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    assert "saved to cp.json" in saved.stdout
    (tmp_path / "key.json").write_text(json.dumps(signing.public_key_document()))
    _append(acme, alice, 3)
    args = ("verify-audit", "--checkpoint", "cp.json", "--public-key", "key.json")
    intact = mlgov(*args, url=live_server.url, token=token, cwd=tmp_path)
    assert intact.returncode == 0, intact.stderr
    assert "intact: acme" in intact.stdout
    assert "extends cp.json" in intact.stdout

    # Remove the tail, head included, and point the head at what is left: consistent, but shorter
    # than what the checkpoint certified.
    seq = json.loads((tmp_path / "cp.json").read_text())["statement"]["seq"]
    kept = AuditEvent.objects.get(workspace=acme, seq=seq - 2)
    _as_dba([("DELETE FROM core_auditevent WHERE workspace_id = %s AND seq > %s", [_pk(acme), seq - 2])])
    Workspace.objects.filter(pk=acme.pk).update(audit_head_seq=seq - 2, audit_head_hash=kept.hash)
    removed = mlgov(*args, url=live_server.url, token=token, cwd=tmp_path)
    assert removed.returncode == 1
    assert f"the checkpoint certified {seq}: events were removed" in removed.stderr


def _pk(workspace):
    return str(workspace.pk) if connection.vendor == "postgresql" else workspace.pk.hex
