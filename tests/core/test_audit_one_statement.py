"""The one-statement append on PostgreSQL (core.audit.audit_append_if_unchanged): PostgreSQL computes
each event's sequence number, time and hash, and the chain they make must verify exactly as one the
ORM's append makes, whatever text the event holds; it writes nothing when the evidence has moved,
and refuses, writing nothing, when a row it did not write lies past the head."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.actors import Actor
from core.audit import (
    AuditChainBroken,
    audit_append,
    audit_append_if_unchanged,
    audit_verify,
    event_document,
    event_hash,
    one_statement_append_available,
)
from core.models import AuditEvent, Workspace

pytestmark = [pytest.mark.usefixtures("postgres_only"), pytest.mark.django_db(transaction=True)]

# Text as people and tools send it: any Unicode but the code points JSON text cannot carry raw
# (surrogates) and NUL, which PostgreSQL's text refuses (the API answers 400 before it gets here).
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def _head(workspace: Workspace) -> tuple[int, str, int]:
    return (
        Workspace.objects.filter(pk=workspace.pk)
        .values_list("audit_head_seq", "audit_head_hash", "evidence_seq")
        .get()
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=TEXT, action=TEXT.filter(bool), target=TEXT, payload=st.dictionaries(TEXT, JSON, max_size=5))
def test_events_appended_in_one_statement_verify_like_the_orms(acme, label, action, target, payload):
    assert one_statement_append_available()
    seq, _, evidence = _head(acme)
    event = audit_append_if_unchanged(
        workspace=acme,
        actor=Actor(system=label),
        action=action[:100],
        target=target,
        payload=payload,
        evidence_seq=evidence,
    )
    assert event is not None
    assert event.seq == seq + 1
    stored = AuditEvent.objects.get(workspace=acme, seq=event.seq)
    assert (stored.pk, stored.hash, stored.prev_hash, stored.created_at) == (
        event.pk,
        event.hash,
        event.prev_hash,
        event.created_at,
    )
    # The hash PostgreSQL computed is the one Python computes from the stored row.
    assert stored.hash == event_hash(stored.prev_hash, event_document(stored))
    assert _head(acme)[:2] == (event.seq, event.hash)
    # The ORM's append follows on from it, and the whole chain verifies.
    audit_append(workspace=acme, actor=Actor(system=label), action="test.after", payload=payload)
    assert audit_verify(workspace=acme).intact


def test_only_a_change_moves_the_evidence_sequence(acme):
    seq, _, evidence = _head(acme)
    read = audit_append_if_unchanged(
        workspace=acme, actor=Actor(system="t"), action="gate.check", evidence_seq=evidence
    )
    assert read is not None
    assert _head(acme)[0] == seq + 1
    assert _head(acme)[2] == evidence
    change = audit_append_if_unchanged(
        workspace=acme, actor=Actor(system="t"), action="test.change", evidence_seq=evidence
    )
    assert change is not None
    assert _head(acme)[2] == change.seq == seq + 2


def test_nothing_is_written_once_the_evidence_has_moved(acme):
    evidence = _head(acme)[2]
    audit_append(workspace=acme, actor=Actor(system="t"), action="test.change")
    moved = _head(acme)
    assert (
        audit_append_if_unchanged(
            workspace=acme, actor=Actor(system="t"), action="gate.check", evidence_seq=evidence
        )
        is None
    )
    assert _head(acme) == moved
    assert AuditEvent.objects.filter(workspace=acme).count() == moved[0]
    assert audit_verify(workspace=acme).intact


def test_a_foreign_row_past_the_head_is_refused_and_nothing_is_written(acme):
    seq, digest, evidence = _head(acme)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO core_auditevent (workspace_id, seq, created_at, actor, action, target, payload, "
            "prev_hash, hash) VALUES (%s, %s, now(), 'x', 'forged', '', '{}', %s, '0')",
            [acme.pk, seq + 1, digest],
        )
    with pytest.raises(AuditChainBroken) as refused:
        audit_append_if_unchanged(
            workspace=acme, actor=Actor(system="t"), action="test.change", evidence_seq=evidence
        )
    assert f"seq {seq + 1}, past the recorded head ({seq})" in str(refused.value)
    assert _head(acme) == (seq, digest, evidence)
    assert AuditEvent.objects.filter(workspace=acme).count() == seq + 1


def test_it_is_not_available_inside_a_transaction(acme):
    with transaction.atomic():
        assert not one_statement_append_available()
