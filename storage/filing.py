"""Writes for filing many records in one transaction: one statement per table per batch.

The ORM writes one row per statement and reads each back (some fifteen statements a record);
these take the rows of a whole batch at once, through SQLAlchemy Core, inside the caller's
unit of work. They write exactly the rows the one-by-one functions of storage.repo and
storage.outbox would: same values, ids in the same order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, text, update
from sqlmodel import Session, col, select

from storage.models import Counter, Inbound, OutboxItem, utcnow
from storage.repo import dialect_insert


def _dialect(s: Session) -> str:
    return s.get_bind().dialect.name


def claim_many(s: Session, *, inbound_ids: Sequence[int], state: str, error: str | None = None) -> set[int]:
    """repo.claim_inbound for many messages: the ids this transaction moved out of `received`."""
    if not inbound_ids:
        return set()
    stmt = (
        update(Inbound)
        .where(col(Inbound.id).in_(bindparam("ids", expanding=True)), col(Inbound.state) == "received")
        .values(state=state, error=error, processed_at=utcnow())
        .returning(col(Inbound.id))
    )
    return {int(i) for i in s.execute(stmt, {"ids": list(inbound_ids)}).scalars()}


def take_numbers(s: Session, *, name: str, count: int) -> list[int]:
    """`count` consecutive values of a named counter in one statement (repo.next_counter, `count`
    times over): the row is locked on PostgreSQL until commit, as there."""
    if count <= 0:
        return []
    ins = dialect_insert(_dialect(s), Counter)
    stmt = (
        ins.values(name=name, value=count)
        .on_conflict_do_update(index_elements=["name"], set_={"value": col(Counter.value) + count})
        .returning(col(Counter.value))
    )
    last = int(s.execute(stmt).scalar_one())
    return list(range(last - count + 1, last + 1))


def new_ids(s: Session, *, table: str, count: int) -> list[int]:
    """The ids `count` rows inserted one after another would get, taken now so that rows of one
    batch can refer to each other (a campaign's first record) before any of them is written.

    SQLite gives a new row max(id) + 1, and this transaction holds the write lock (BEGIN
    IMMEDIATE), so no one else can take them; PostgreSQL takes them from the column's sequence."""
    if count <= 0:
        return []
    if _dialect(s) == "postgresql":
        rows = s.execute(text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) AS id"
                              " FROM generate_series(1, :n) ORDER BY id"), {"table": table, "n": count})
        return [int(r[0]) for r in rows]
    top = int(s.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one())  # noqa: S608 - our name
    return list(range(top + 1, top + count + 1))


def insert_rows(s: Session, table: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """One executemany of plain rows (every row with the same keys), in order. `table` is a Core
    Table: given a mapped class, SQLAlchemy's ORM bulk insert adds its own work per row."""
    if rows:
        s.execute(insert(table), list(rows))


def insert_plain(s: Session, *, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """An executemany straight to the driver, for many rows of plain integers or strings (band
    keys: 32 a record): SQLAlchemy's processing of each row's parameters cost more than SQLite's
    insert of it."""
    if not rows:
        return
    conn = s.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    conn.exec_driver_sql(sql, list(rows))


def select_plain(s: Session, sql: str, values: Sequence[Any]) -> list[Any]:
    """Rows of `sql`, its one `{}` filled with a placeholder per value (an IN list of thousands of
    band keys: SQLAlchemy's expanding parameter named each one, which took longer than the query)."""
    conn = s.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return list(conn.exec_driver_sql(sql.format(", ".join([mark] * len(values))), tuple(values)).all())


def outbox_row(*, key: str, kind: str, payload: dict[str, Any], submission_id: int | None = None,
               recipient: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The row storage.outbox.enqueue would write for one effect."""
    now = now or utcnow()
    return {"key": key, "kind": kind, "payload": json.dumps(payload), "submission_id": submission_id,
            "recipient": recipient, "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}


def enqueue_many(s: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """storage.outbox.enqueue for many effects in order: a key already queued is left as it is."""
    if not rows:
        return
    table = OutboxItem.__table__  # type: ignore[attr-defined]
    ins = dialect_insert(_dialect(s), table)
    # One statement for every batch (an executemany), so SQLAlchemy compiles it once per process;
    # a multi-row VALUES differs with the number of rows and was compiled again for each batch.
    s.execute(ins.on_conflict_do_nothing(index_elements=["key"]), list(rows))


def recent_counts(s: Session, *, kind: str, recipients: Iterable[str], since: timedelta) -> dict[str, int]:
    """repo.count_recent_outbox for many recipients in one query (recipients are lower case)."""
    wanted = sorted({r.lower() for r in recipients})
    if not wanted:
        return {}
    stmt = (
        select(OutboxItem.recipient, func.count())
        .where(OutboxItem.kind == kind, col(OutboxItem.recipient).in_(bindparam("to", expanding=True)),
               col(OutboxItem.created_at) >= utcnow() - since)
        .group_by(col(OutboxItem.recipient))
    )
    return {str(r): int(n) for r, n in s.execute(stmt, {"to": wanted}).all()}
