import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, connections, transaction
from django.urls import reverse

from core.actors import Actor
from core.audit import audit_append, audit_verify
from core.models import AuditEvent, Workspace
from tests.conftest import session


def _append(workspace, user, n):
    for i in range(n):
        audit_append(
            workspace=workspace,
            actor=Actor(user=user),
            action="test.event",
            target=f"t:{i}",
            payload={"i": i, "text": "naïve ✓", "nested": {"b": [1, 2.5, None], "a": True}},
        )


def _tamper(sql: str, params: list) -> None:
    """Change a stored event the way someone with database access could, trigger or not."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A superuser can switch triggers off for the session; the chain must still tell.
            cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")


def test_fresh_chain_is_intact(acme, alice):
    _append(acme, alice, 10)
    report = audit_verify(workspace=acme)
    assert report.intact
    # workspace.create + membership.create for ada, membership for alice is made directly.
    assert report.summary() == f"intact, {AuditEvent.objects.filter(workspace=acme).count()} events"
    assert report.events == 12


def test_changed_payload_is_named_by_audit_verify(acme, alice, capsys):
    _append(acme, alice, 10)
    victim = AuditEvent.objects.get(workspace=acme, seq=7)
    _tamper("UPDATE core_auditevent SET payload = %s WHERE id = %s", ['{"i": 999}', victim.id])

    report = audit_verify(workspace=acme)
    assert not report.intact
    assert report.broken_at == 7
    assert report.reason == "its content does not match its hash"
    with pytest.raises(CommandError):
        call_command("audit_verify")
    assert "acme: broken at event 7: its content does not match its hash" in capsys.readouterr().out


def test_deleted_event_is_reported_as_a_gap(acme, alice):
    _append(acme, alice, 5)
    _tamper("DELETE FROM core_auditevent WHERE workspace_id = %s AND seq = %s", [acme.pk.hex, 4])
    report = audit_verify(workspace=acme)
    assert (report.intact, report.broken_at, report.reason) == (False, 4, "event 4 is missing")


def test_truncated_tail_is_detected(acme, alice):
    _append(acme, alice, 5)
    acme.refresh_from_db()
    _tamper(
        "DELETE FROM core_auditevent WHERE workspace_id = %s AND seq = %s", [acme.pk.hex, acme.audit_head_seq]
    )
    report = audit_verify(workspace=acme)
    assert not report.intact
    assert report.broken_at == acme.audit_head_seq


def test_verify_endpoint_reports_intact_chain(acme, carol):
    response = session(carol).get(reverse("audit-verify"))
    assert response.status_code == 200
    body = response.json()
    assert body["intact"] is True
    assert body["summary"] == f"intact, {body['events']} events"


def test_verify_endpoint_names_the_broken_event(acme, carol, alice):
    _append(acme, alice, 3)
    victim = AuditEvent.objects.get(workspace=acme, seq=2)
    _tamper("UPDATE core_auditevent SET actor = %s WHERE id = %s", ["user:someone-else", victim.id])
    body = session(carol).get(reverse("audit-verify")).json()
    assert (body["intact"], body["broken_at"]) == (False, 2)
    assert body["summary"].startswith("broken at event 2")


def test_data_scientist_cannot_read_the_audit_log(acme, alice):
    assert session(alice).get(reverse("audit-event-list")).status_code == 403


def test_audit_events_filter_by_action_actor_and_time(acme, carol, alice):
    _append(acme, alice, 3)
    client = session(carol)
    events = client.get(reverse("audit-event-list"), {"action": "test.event"}).json()
    assert events["count"] == 3
    assert [e["seq"] for e in events["results"]] == [5, 4, 3]
    assert client.get(reverse("audit-event-list"), {"action": "membership.*"}).json()["count"] == 1
    assert client.get(reverse("audit-event-list"), {"actor": "user:alice"}).json()["count"] == 3
    first = AuditEvent.objects.get(workspace=acme, seq=3).created_at
    since = client.get(reverse("audit-event-list"), {"since": first.isoformat()}).json()
    assert {e["seq"] for e in since["results"]} >= {3, 4, 5}
    bad = client.get(reverse("audit-event-list"), {"since": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "since"


def test_event_detail_by_sequence_number(acme, carol):
    body = session(carol).get(reverse("audit-event-detail", kwargs={"seq": 1})).json()
    assert body["action"] == "workspace.create"
    assert body["prev_hash"] == "0" * 64


@pytest.mark.usefixtures("postgres_only")
@pytest.mark.parametrize(
    "statement", ["UPDATE core_auditevent SET action = 'x'", "DELETE FROM core_auditevent"]
)
def test_postgres_trigger_rejects_update_and_delete(acme, statement):
    before = list(AuditEvent.objects.filter(workspace=acme).values_list("seq", "action"))
    assert before
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert list(AuditEvent.objects.filter(workspace=acme).values_list("seq", "action")) == before


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_one_intact_chain_without_gaps():
    """8 threads, each with its own database connection, append 200 events each to one workspace."""
    from tests.factories import make_user, make_workspace

    user = make_user("writer")
    workspace = make_workspace("busy", admin=user)
    base = Workspace.objects.get(pk=workspace.pk).audit_head_seq
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(k: int) -> None:
        try:
            start.wait()
            ws = Workspace.objects.get(pk=workspace.pk)
            for i in range(200):
                audit_append(
                    workspace=ws, actor=Actor(user=user), action="load.append", payload={"w": k, "i": i}
                )
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seqs = list(AuditEvent.objects.filter(workspace=workspace).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, base + 1601))
    assert AuditEvent.objects.filter(workspace=workspace, action="load.append").count() == 1600
    report = audit_verify(workspace=workspace)
    assert report.intact
    assert report.events == base + 1600


def test_appends_on_a_head_the_caller_locked_keep_the_chain(acme, alice, mallory):
    from core.audit import audit_head

    actor = Actor(user=alice)
    with transaction.atomic():
        head = audit_head(acme)
        before = head.audit_head_seq
        first = audit_append(workspace=acme, actor=actor, action="test.one", locked=head)
        second = audit_append(workspace=acme, actor=actor, action="gate.check", locked=head)
    assert (first.seq, second.seq) == (before + 1, before + 2)
    assert second.prev_hash == first.hash
    acme.refresh_from_db()
    assert (acme.audit_head_seq, acme.audit_head_hash) == (second.seq, second.hash)
    assert acme.evidence_seq == first.seq  # gate.check is a read: it does not move the evidence
    assert audit_verify(workspace=acme).intact
    other = Workspace.objects.get(slug="umbrella")
    with transaction.atomic(), pytest.raises(ValueError, match="another workspace"):
        audit_append(workspace=acme, actor=actor, action="test.x", locked=audit_head(other))


def test_numbers_the_database_writes_differently_keep_the_chain_intact(acme, alice):
    """PostgreSQL's jsonb gives 1e+16 back as 10000000000000000 and -0.0 as 0.0: what is hashed must
    be what is read back (found by the one-statement append's property test)."""
    from core.canonical_json import normalise

    numbers = [1e16, -1.5e16, 1e300, -0.0, 1e-05, 5e-324, 0.1, 100.0, 2**60]
    event = audit_append(
        workspace=acme, actor=Actor(user=alice), action="test.numbers", payload={"n": numbers}
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.payload == event.payload == normalise({"n": numbers})
    assert stored.payload["n"][:4] == [10**16, -15 * 10**15, int(1e300), 0.0]
    assert audit_verify(workspace=acme).intact
