"""Fast inserts for ingestion: rows prepared once per column type and sent with executemany,
skipping rows that already exist (ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike).

Django's bulk_create builds a model instance and prepares every field of every row through its
generic machinery; for lineage batches of thousands of rows that was most of the ingestion time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from core.canonical_json import canonical_json
from core.models import Workspace
from lineage.fields import nul_escape, nul_unescape
from lineage.models import Edge, Node, OutboxEntry


def _prepared(workspace: Workspace, now: datetime) -> tuple[Any, Any]:
    ws = Node._meta.get_field("workspace").get_db_prep_value(workspace.pk, connection, prepared=False)
    when = Node._meta.get_field("created_at").get_db_prep_value(now, connection, prepared=False)
    return ws, when


def _insert(table: str, columns: Sequence[str], rows: list[tuple], returning: str = "") -> list[tuple]:
    """Insert rows, skipping conflicts. On PostgreSQL, `returning` columns of the inserted rows come
    back; elsewhere nothing does (the caller looks the rows up)."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        return _copy_insert(table, columns, rows, returning)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608 (names are constants)
        f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        # psycopg 3 sends these in pipeline mode: one round trip for the whole batch.
        cursor.executemany(sql, rows)
    return []


def _copy_insert(table: str, columns: Sequence[str], rows: list[tuple], returning: str) -> list[tuple]:
    """PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO NOTHING."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    stage = f"stage_{table}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {quote(stage)} ON COMMIT DELETE ROWS "  # noqa: S608
            f"AS SELECT {names} FROM {quote(table)} WITH NO DATA"
        )
        raw = cursor.cursor  # the psycopg cursor, for COPY
        with raw.copy(f"COPY {quote(stage)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {quote(table)} ({names}) SELECT {names} FROM {quote(stage)} "  # noqa: S608
            "ON CONFLICT DO NOTHING" + (f" RETURNING {returning}" if returning else "")
        )
        inserted = cursor.fetchall() if returning else []
        cursor.execute(f"DELETE FROM {quote(stage)}")  # noqa: S608
    return inserted


def insert_nodes(workspace: Workspace, now: datetime, nodes: list[tuple]) -> dict[tuple[str, str], int]:
    """`nodes` are (kind, key, name, properties, artifact id or None) tuples. Returns the ids of the
    rows this call inserted where the database says so (PostgreSQL); look up the others."""
    ws, when = _prepared(workspace, now)
    artifact = Node._meta.get_field("artifact")
    rows = [
        (
            ws,
            kind,
            nul_escape(key),
            nul_escape(name),
            canonical_json(props),
            None if artifact_id is None else artifact.get_db_prep_save(artifact_id, connection),
            when,
            when,
        )
        for kind, key, name, props, artifact_id in nodes
    ]
    columns = ["workspace_id", "kind", "key", "name", "properties", "artifact_id", "created_at", "updated_at"]
    inserted = _insert(Node._meta.db_table, columns, rows, returning="kind, key, id")
    return {(kind, nul_unescape(key)): pk for kind, key, pk in inserted}


def insert_edges(
    workspace: Workspace, now: datetime, edges: list[tuple], *, returning: bool = False
) -> dict[tuple[int, int, str], int]:
    """`edges` are (kind, src, dst, up, down, properties) tuples: no model instances on this path.
    With `returning`, the ids of the rows inserted, by (src, dst, kind), where the database says
    (PostgreSQL); look up the others."""
    ws, when = _prepared(workspace, now)
    rows = [
        (ws, kind, src, dst, up, down, canonical_json(props), when)
        for kind, src, dst, up, down, props in edges
    ]
    columns = ["workspace_id", "kind", "src_id", "dst_id", "up_id", "down_id", "properties", "created_at"]
    inserted = _insert(
        Edge._meta.db_table, columns, rows, returning="src_id, dst_id, kind, id" if returning else ""
    )
    return {(src, dst, kind): pk for src, dst, kind, pk in inserted}


def insert_outbox(workspace: Workspace, now: datetime, entries: list[tuple[str, dict]]) -> None:
    """Outbox rows, (op, payload), through the same fast path as the graph rows."""
    ws, when = _prepared(workspace, now)
    rows = [(ws, op, canonical_json(payload), when, 0, "") for op, payload in entries]
    columns = ["workspace_id", "op", "payload", "created_at", "attempts", "last_error"]
    _insert(OutboxEntry._meta.db_table, columns, rows)
