"""The tamper-evident audit log: appends that never fork the chain, and its verification.

Each workspace has one chain. An append locks the workspace row (SELECT ... FOR NO KEY UPDATE on
PostgreSQL; SQLite runs every transaction with BEGIN IMMEDIATE, which serialises writers), takes
the next sequence number and the previous hash from it, and writes the event and the new head in
the same transaction as the change it records.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, cast

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from core.actors import Actor
from core.canonical_json import canonical_json, normalise
from core.errors import ApplicationError, Conflict
from core.models import GENESIS_HASH, AuditEvent, Workspace


class AuditChainBroken(Conflict):
    """The next event's place in the chain is taken by a row the service did not write: nothing can
    be recorded (the caller's whole change rolls back) until an operator has looked at the chain."""

    title = "Audit chain broken"


def event_document(event: AuditEvent) -> dict[str, Any]:
    """The fields of an event that its hash covers."""
    return _document(
        workspace_id=event.workspace_id,
        seq=event.seq,
        time=event.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        actor=event.actor,
        action=event.action,
        target=event.target,
        payload=event.payload,
    )


def _document(*, workspace_id, seq, time, actor, action, target, payload) -> dict[str, Any]:
    return {
        "workspace": str(workspace_id),
        "seq": seq,
        "time": time,
        "actor": actor,
        "action": action,
        "target": target,
        "payload": payload,
    }


def event_hash(prev_hash: str, document: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(document)).encode("utf-8")).hexdigest()


# Actions that record a read, not a change: they leave Workspace.evidence_seq alone.
READ_ONLY_ACTIONS = frozenset({"gate.check"})


def audit_head(workspace: Workspace):
    """Lock the workspace's chain head for an append later in the same transaction. A caller that
    must read something consistent with the chain (Workspace.evidence_seq) locks first, reads, and
    passes the locked head to audit_append.

    The lock is PostgreSQL's FOR NO KEY UPDATE: appends wait for one another, but rows that merely
    refer to the workspace (every insert with its foreign key takes FOR KEY SHARE on it) are not held
    up by an append in progress, nor hold one up until they commit."""
    return (
        Workspace.objects.select_for_update(no_key=True)
        .only("id", "audit_head_seq", "audit_head_hash", "evidence_seq")
        .get(pk=workspace.pk)
    )


def audit_append(
    *,
    workspace: Workspace,
    actor: Actor,
    action: str,
    target: str = "",
    payload: Any = None,
    locked: Workspace | None = None,
) -> AuditEvent:
    """Append one event to the workspace's chain, inside the caller's transaction. `locked` is the
    head the caller already holds (from audit_head, or a query with the same lock and fields)."""
    payload = normalise(payload if payload is not None else {})
    # No savepoint: if appending fails, the caller's whole change must fail with it.
    with transaction.atomic(savepoint=False):
        if locked is not None and locked.pk != workspace.pk:
            raise ValueError("the locked head belongs to another workspace")
        head = locked if locked is not None else audit_head(workspace)
        event = AuditEvent(
            workspace_id=head.pk,
            seq=head.audit_head_seq + 1,
            created_at=timezone.now(),
            actor=actor.label,
            action=action,
            target=target,
            payload=payload,
            prev_hash=head.audit_head_hash,
        )
        event.hash = event_hash(event.prev_hash, event_document(event))
        try:
            event.save(force_insert=True)
        except IntegrityError:
            raise _broken(event.seq, head.audit_head_seq) from None  # the caller's change rolls back
        seq, digest = event.seq, event.hash
        changes: dict[str, Any] = {"audit_head_seq": seq, "audit_head_hash": digest}
        if action not in READ_ONLY_ACTIONS:
            changes["evidence_seq"] = seq
        Workspace.objects.filter(pk=head.pk).update(**changes)
        for name, value in changes.items():
            setattr(head, name, value)
    workspace.audit_head_seq, workspace.audit_head_hash = seq, digest
    return event


def _broken(seq: int, head_seq: int) -> AuditChainBroken:
    # Appends hold the head's lock, so the only row that can be at head + 1 is one written past the
    # service (a forged or restored row).
    return AuditChainBroken(
        f"this workspace's audit chain is broken: an event the service did not write lies at "
        f"seq {seq}, past the recorded head ({head_seq}); nothing was changed. "
        "An operator must verify the chain (manage.py audit_verify)."
    )


def one_statement_append_available() -> bool:
    """Whether audit_append_if_unchanged can run: PostgreSQL, and no transaction open (the statement
    must be a transaction of its own)."""
    connection = transaction.get_connection()
    return (
        connection.vendor == "postgresql" and connection.get_autocommit() and not connection.in_atomic_block
    )


def _document_around_seq_and_time(**fields: Any) -> tuple[str, str, str]:
    """The event's canonical JSON (event_document's) without its sequence number and time, in the
    three pieces around them, for the database to join with the two it decides: marks that nothing
    else in the text can hold stand in for them, and the text is cut there."""
    mark = secrets.token_hex(16)
    seq_mark, time_mark = f"seq-{mark}", f"time-{mark}"
    text = canonical_json(_document(seq=seq_mark, time=time_mark, **fields))
    before_seq, seq_found, rest = text.partition(f'"{seq_mark}"')
    before_time, time_found, after_time = rest.partition(time_mark)
    if not (seq_found and time_found):  # canonical order puts "seq" before "time", always
        raise RuntimeError("the event's canonical JSON lacks its sequence number or time")
    return before_seq, before_time, after_time


# The event's time as event_document writes it (isoformat, microseconds, UTC), in SQL.
_SQL_EVENT_TIME = """to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00'"""


def audit_append_if_unchanged(
    *,
    workspace: Workspace,
    actor: Actor,
    action: str,
    target: str = "",
    payload: Any = None,
    evidence_seq: int,
    rows: Sequence[models.Model] = (),
) -> AuditEvent | None:
    """Append one event, with the new `rows` it records, in a single statement that is its own
    transaction (PostgreSQL, outside any transaction: see one_statement_append_available), provided
    the workspace's evidence sequence is still `evidence_seq`; None, with nothing written, if it
    has moved.

    The statement locks the head (FOR NO KEY UPDATE), inserts the rows, inserts the event with its
    sequence number, time and hash computed by PostgreSQL (sha256 over the previous hash and the
    event's canonical JSON, whose parts other than the sequence number and the time are made here),
    and moves the head; it commits as it ends. So the head is held only while PostgreSQL runs it,
    never while this process waits for a reply or for Python's lock, which under load is what
    appends otherwise queue behind. The time is the database server's clock when the head is locked
    (audit_append takes the web server's, also under the lock)."""
    connection = transaction.get_connection()
    quote = connection.ops.quote_name
    payload = normalise(payload if payload is not None else {})
    before_seq, before_time, after_time = _document_around_seq_and_time(
        workspace_id=workspace.pk, actor=actor.label, action=action, target=target, payload=payload
    )
    # Only quoted table and column names of models go into the text; every value is a parameter.
    ctes = [
        "head AS MATERIALIZED (SELECT id, audit_head_seq + 1 AS seq, audit_head_hash AS prev_hash, "  # noqa: S608
        f"clock_timestamp() AS at FROM {quote(Workspace._meta.db_table)} "
        "WHERE id = %s AND evidence_seq = %s FOR NO KEY UPDATE)"
    ]
    params: list[Any] = [workspace.pk, evidence_seq]
    for index, row in enumerate(rows):
        fields = row._meta.concrete_fields
        columns = ", ".join(quote(field.column) for field in fields)
        ctes.append(
            f"row{index} AS (INSERT INTO {quote(row._meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT {', '.join(['%s'] * len(fields))} FROM head)"
        )
        params += [field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields]
    payload_field = cast(models.JSONField, AuditEvent._meta.get_field("payload"))
    ctes.append(
        f"appended AS (INSERT INTO {quote(AuditEvent._meta.db_table)} "  # noqa: S608
        "(workspace_id, seq, created_at, actor, action, target, payload, prev_hash, hash) "
        "SELECT id, seq, at, %s, %s, %s, %s, prev_hash, encode(sha256(convert_to("
        f"prev_hash || %s || seq::text || %s || {_SQL_EVENT_TIME} || %s, 'UTF8')), 'hex') "
        "FROM head RETURNING id, workspace_id, seq, created_at, prev_hash, hash)"
    )
    params += [
        actor.label,
        action,
        target,
        payload_field.get_db_prep_save(payload, connection),
        before_seq,
        before_time,
        after_time,
    ]
    evidence = "" if action in READ_ONLY_ACTIONS else ", evidence_seq = appended.seq"
    sql = (
        f"WITH {', '.join(ctes)} UPDATE {quote(Workspace._meta.db_table)} AS w "  # noqa: S608
        f"SET audit_head_seq = appended.seq, audit_head_hash = appended.hash{evidence} "
        "FROM appended WHERE w.id = appended.workspace_id "
        "RETURNING appended.id, appended.seq, appended.created_at, appended.prev_hash, appended.hash"
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchone()
    except IntegrityError as error:
        if getattr(getattr(error.__cause__, "diag", None), "constraint_name", "") != "audit_unique_seq":
            raise
        head_seq = Workspace.objects.filter(pk=workspace.pk).values_list("audit_head_seq", flat=True).get()
        raise _broken(head_seq + 1, head_seq) from None
    if found is None:
        return None
    event_id, seq, created_at, prev_hash, digest = found
    event = AuditEvent(
        id=event_id,
        workspace_id=workspace.pk,
        seq=seq,
        created_at=created_at,
        actor=actor.label,
        action=action,
        target=target,
        payload=payload,
        prev_hash=prev_hash,
        hash=digest,
    )
    for instance in (event, *rows):
        instance._state.adding, instance._state.db = False, connection.alias
    workspace.audit_head_seq, workspace.audit_head_hash = seq, digest
    return event


@dataclass(frozen=True)
class ChainReport:
    workspace: str
    intact: bool
    events: int
    broken_at: int | None = None
    reason: str = ""

    def summary(self) -> str:
        if self.intact:
            return f"intact, {self.events} events"
        return f"broken at event {self.broken_at}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "intact": self.intact,
            "events": self.events,
            "broken_at": self.broken_at,
            "reason": self.reason,
            "summary": self.summary(),
        }


def chain_check(
    events: Iterable[AuditEvent], *, head_seq: int, head_hash: str, workspace: str
) -> ChainReport:
    """Walk events in sequence order and report the first link that does not hold; the chain must
    end exactly at the recorded head (its sequence number and hash)."""
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for event in events:
        if event.seq != expected_seq:
            if event.seq < expected_seq:
                reason = f"an extra event at seq {event.seq}"
                return ChainReport(workspace, False, count, event.seq, reason)
            return ChainReport(workspace, False, count, expected_seq, f"event {expected_seq} is missing")
        if event.prev_hash != prev_hash:
            return ChainReport(workspace, False, count, event.seq, "its previous hash does not match")
        if event_hash(prev_hash, event_document(event)) != event.hash:
            return ChainReport(workspace, False, count, event.seq, "its content does not match its hash")
        prev_hash, expected_seq, count = event.hash, expected_seq + 1, count + 1
    if count != head_seq:
        return ChainReport(
            workspace, False, count, count + 1, f"the chain ends at {count} but the head says {head_seq}"
        )
    if prev_hash != head_hash:
        return ChainReport(
            workspace, False, count, count, "the last event's hash is not the hash the head records"
        )
    return ChainReport(workspace, True, count)


def audit_verify(*, workspace: Workspace) -> ChainReport:
    """Verify one workspace's chain from the first event to the recorded head, and that no event lies
    past the head (a row the service did not write)."""
    with transaction.atomic():
        # An event and the head that points at it commit together, so every event up to the head
        # read here is visible; later appends are left for the next verification.
        head = Workspace.objects.only("audit_head_seq", "audit_head_hash", "slug").get(pk=workspace.pk)
        foreign = _events_past_head(workspace)
        if foreign:
            first, count, head_seq = foreign
            return ChainReport(
                head.slug,
                False,
                head_seq,
                first,
                f"{count} event{'s' if count != 1 else ''} past the recorded head ({head_seq}), "
                f"from seq {first}: not written by the service",
            )
        events = AuditEvent.objects.filter(workspace_id=workspace.pk, seq__lte=head.audit_head_seq)
        events = events.order_by("seq")
        return chain_check(
            events.iterator(chunk_size=2000),
            head_seq=head.audit_head_seq,
            head_hash=head.audit_head_hash,
            workspace=head.slug,
        )


def _events_past_head(workspace: Workspace) -> tuple[int, int, int] | None:
    """(first seq, how many, head seq) of the events that lie past the workspace's head, or None.

    Read without locking the head: events are read first and the head after, and an append commits
    its event and the head together, so an event the service wrote is never past the head read after
    it; a concurrent append is not mistaken for a foreign row."""
    events = AuditEvent.objects.filter(workspace_id=workspace.pk)
    heads = Workspace.objects.filter(pk=workspace.pk).values_list("audit_head_seq", flat=True)
    high = events.order_by("-seq").values_list("seq", flat=True).first()
    if high is None or high <= heads.get():
        return None
    beyond = list(events.filter(seq__gt=heads.get()).order_by("seq").values_list("seq", flat=True))
    head_seq = heads.get()  # appends that committed meanwhile are the service's own
    foreign = [seq for seq in beyond if seq > head_seq]
    return (foreign[0], len(foreign), head_seq) if foreign else None


REFUSAL_STATUSES = frozenset({403, 409})


def refusals_audited(action: str, target: Callable[[dict[str, Any]], str]) -> Callable:
    """Decorate a service (keyword arguments `workspace` and `actor`) so that a refusal — an
    ApplicationError answering 403 or 409 (not allowed; not now) — leaves one audit event,
    `<action>.refuse` naming who was refused, what and why, written after the service's own
    transaction rolled back. Invalid input (400) is not a refusal and is not recorded."""

    def decorate(service: Callable) -> Callable:
        @functools.wraps(service)
        def run(**kwargs: Any) -> Any:
            try:
                return service(**kwargs)
            except ApplicationError as error:
                if error.status in REFUSAL_STATUSES:
                    with transaction.atomic():
                        audit_append(
                            workspace=kwargs["workspace"],
                            actor=kwargs["actor"],
                            action=f"{action}.refuse",
                            target=target(kwargs),
                            payload={
                                "reason": error.detail,
                                "status": error.status,
                                "fields": [e.field for e in error.errors],
                            },
                        )
                raise

        return run

    return decorate
