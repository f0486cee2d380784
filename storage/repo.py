"""The repository: every read and write of evidence goes through these keyword-only functions.

Each takes the session of the caller's unit of work; none commits, so a caller can make several
changes (a record, its attachments and its acknowledgement) land together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.engine import Connection, Dialect
from sqlmodel import Session, col, select

from storage.models import Attachment, Audit, Counter, FollowUp, Inbound, OutboxItem, Submission, utcnow


@dataclass(frozen=True)
class InboundDraft:
    """A message as a door received it, before it is stored."""

    raw: bytes
    dedupe_key: str
    message_id: str | None
    envelope_from: str | None
    envelope_to: Sequence[str]
    peer: str | None = None
    channel: str = "email"
    received_at: datetime | None = None
    helo: str | None = None


def dialect_insert(dialect: str, table: Any) -> Any:
    """The INSERT construct of this database (for ON CONFLICT): PostgreSQL's module is imported
    only when used, since it was a twentieth of every CLI start-up on SQLite."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def _insert_ignore(session: Session, table: type, values: dict, conflict: str) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the id, or None when the row existed."""
    dialect = session.get_bind().dialect.name
    ins = dialect_insert(dialect, table)
    stmt = ins.values(**values).on_conflict_do_nothing(index_elements=[conflict]).returning(table.id)  # type: ignore[attr-defined]
    return session.execute(stmt).scalar_one_or_none()


def insert_inbound(session: Session, *, draft: InboundDraft) -> tuple[int, bool]:
    """Store one raw message; returns (id, created). A duplicate returns the first copy's id."""
    new_id = _insert_ignore(
        session,
        Inbound,
        {
            "channel": draft.channel,
            "dedupe_key": draft.dedupe_key,
            "message_id": draft.message_id,
            "envelope_from": draft.envelope_from,
            "envelope_to": ",".join(draft.envelope_to),
            "peer": draft.peer,
            "helo": draft.helo,
            "size": len(draft.raw),
            "raw": draft.raw,
            "received_at": draft.received_at or utcnow(),
            "state": "received",
        },
        "dedupe_key",
    )
    if new_id is not None:
        return new_id, True
    existing = session.exec(select(Inbound.id).where(Inbound.dedupe_key == draft.dedupe_key)).one()
    assert existing is not None
    return existing, False


Query = tuple[str, tuple[Any, ...]]


class FastInboundInsert:
    """Stores many raw messages in one statement whatever their number (the SMTP door's group
    commit); returns (id, created) per draft, in order. Duplicates, within the batch or of earlier
    messages, return the first copy's id (looked up only when there are any).

    Every microsecond spent here is taken from the event loop that speaks SMTP, so this path
    skips the ORM and statement building: one multi-row INSERT ... ON CONFLICT DO NOTHING
    RETURNING, which SQLite (3.35+) and PostgreSQL both understand.
    """

    COLUMNS = ("channel", "dedupe_key", "message_id", "envelope_from", "envelope_to", "peer", "helo", "size", "raw",
               "received_at", "state")

    def __init__(self, dialect: Dialect) -> None:
        self.mark = "?" if dialect.paramstyle == "qmark" else "%s"
        self.row = "(" + ", ".join([self.mark] * len(self.COLUMNS)) + ")"
        self.head = f"INSERT INTO inbound ({', '.join(self.COLUMNS)}) VALUES "
        self.tail = " ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key, id"
        self.lookup = "SELECT dedupe_key, id FROM inbound WHERE dedupe_key IN ({})"
        table = Inbound.__table__  # type: ignore[attr-defined]
        # Datetimes and blobs go in exactly as SQLAlchemy would write them, so the ORM reads them back.
        self.when = table.c.received_at.type.bind_processor(dialect) or (lambda v: v)
        self.blob = table.c.raw.type.bind_processor(dialect) or (lambda v: v)

    def __call__(self, conn: Connection, drafts: Sequence[InboundDraft]) -> list[tuple[int, bool]]:
        """Inside a SQLAlchemy transaction."""
        return self.run(lambda sql, params: conn.exec_driver_sql(sql, params).all(), drafts)

    def on_cursor(self, cur: Any, drafts: Sequence[InboundDraft]) -> list[tuple[int, bool]]:
        """On a raw DB-API cursor inside a transaction the caller opened (the door's SQLite path)."""
        return self.run(lambda sql, params: cur.execute(sql, params).fetchall(), drafts)

    def run(self, execute: Callable[[str, tuple[Any, ...]], Sequence[Any]],
            drafts: Sequence[InboundDraft]) -> list[tuple[int, bool]]:
        steps = self.steps(drafts)
        rows: Sequence[Any] | None = None
        try:
            while True:
                rows = execute(*steps.send(rows))
        except StopIteration as done:
            return done.value

    async def run_async(self, execute: Callable[[str, tuple[Any, ...]], Awaitable[Sequence[Any]]],
                        drafts: Sequence[InboundDraft]) -> list[tuple[int, bool]]:
        """The same statements through an async driver (the door's PostgreSQL path)."""
        steps = self.steps(drafts)
        rows: Sequence[Any] | None = None
        try:
            while True:
                rows = await execute(*steps.send(rows))
        except StopIteration as done:
            return done.value

    def steps(self, drafts: Sequence[InboundDraft]) -> Generator[Query, Sequence[Any] | None, list[tuple[int, bool]]]:
        """The statements, free of any driver: yields (sql, params), is sent back the rows."""
        first: dict[str, InboundDraft] = {}
        for d in drafts:
            first.setdefault(d.dedupe_key, d)
        now = self.when(utcnow())
        params: list[object] = []
        for d in first.values():
            params += [d.channel, d.dedupe_key, d.message_id, d.envelope_from, ",".join(d.envelope_to), d.peer,
                       d.helo, len(d.raw), self.blob(d.raw), self.when(d.received_at) if d.received_at else now,
                       "received"]
        sql = self.head + ", ".join([self.row] * len(first)) + self.tail
        created = {k: int(i) for k, i in (yield sql, tuple(params)) or ()}
        ids = dict(created)
        missing = [k for k in first if k not in created]
        if missing:
            sql = self.lookup.format(", ".join([self.mark] * len(missing)))
            ids.update({k: int(i) for k, i in (yield sql, tuple(missing)) or ()})
        out = []
        for d in drafts:
            out.append((ids[d.dedupe_key], d.dedupe_key in created))
            created.pop(d.dedupe_key, None)  # a later copy in the same batch is a duplicate
        return out

def pending_inbound_ids(session: Session, *, limit: int = 50) -> list[int]:
    stmt = select(Inbound.id).where(Inbound.state == "received").order_by(col(Inbound.id)).limit(limit)
    return [i for i in session.exec(stmt).all() if i is not None]


def get_inbound(session: Session, *, inbound_id: int) -> Inbound | None:
    return session.get(Inbound, inbound_id)


def claim_inbound(session: Session, *, inbound_id: int, state: str, error: str | None = None) -> bool:
    """Move a received message to its final state; False when another worker got there first."""
    res = session.execute(
        update(Inbound)
        .where(col(Inbound.id) == inbound_id, col(Inbound.state) == "received")
        .values(state=state, error=error, processed_at=utcnow())
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


def next_counter(session: Session, *, name: str) -> int:
    """Atomically increments and returns a named counter (row-locked on PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    ins = dialect_insert(dialect, Counter)
    stmt = (
        ins.values(name=name, value=1)
        .on_conflict_do_update(index_elements=["name"], set_={"value": col(Counter.value) + 1})
        .returning(col(Counter.value))
    )
    return int(session.execute(stmt).scalar_one())


def add_submission(session: Session, *, submission: Submission, attachments: Sequence[Attachment] = ()) -> Submission:
    session.add(submission)
    session.flush()
    for pos, a in enumerate(attachments):
        a.submission_id = submission.id  # type: ignore[assignment]
        a.position = pos
        session.add(a)
    session.flush()
    return submission


def add_followup(
    session: Session, *, followup: FollowUp, attachments: Sequence[Attachment] = ()
) -> FollowUp:
    session.add(followup)
    session.flush()
    for pos, a in enumerate(attachments):
        a.submission_id = followup.submission_id
        a.followup_id = followup.id
        a.position = pos
        session.add(a)
    session.flush()
    return followup


def get_submission(
    session: Session, *, reference: str | None = None, submission_id: int | None = None
) -> Submission | None:
    if submission_id is not None:
        return session.get(Submission, submission_id)
    if reference is None:
        return None
    # References are written in capitals (bot.references): the unique index finds one at once.
    # Only a miss is looked for again ignoring case, which reads the whole table.
    found = session.exec(select(Submission).where(Submission.reference == reference.upper())).first()
    if found is not None:
        return found
    return session.exec(select(Submission).where(func.upper(Submission.reference) == reference.upper())).first()


def list_submissions(
    session: Session, *, status: str | None = None, kind: str | None = None, limit: int | None = None
) -> list[Submission]:
    stmt = select(Submission).order_by(col(Submission.id))
    if status:
        stmt = stmt.where(Submission.status == status)
    if kind:
        stmt = stmt.where(Submission.kind == kind)
    if limit:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt).all())


def attachments_of(session: Session, *, submission_ids: Sequence[int]) -> dict[int, list[Attachment]]:
    out: dict[int, list[Attachment]] = {i: [] for i in submission_ids}
    if not submission_ids:
        return out
    stmt = (
        select(Attachment)
        .where(col(Attachment.submission_id).in_(submission_ids), col(Attachment.followup_id).is_(None))
        .order_by(col(Attachment.submission_id), col(Attachment.position))
    )
    for a in session.exec(stmt).all():
        out[a.submission_id].append(a)
    return out


def followups_of(session: Session, *, submission_id: int) -> list[FollowUp]:
    stmt = select(FollowUp).where(FollowUp.submission_id == submission_id).order_by(col(FollowUp.id))
    return list(session.exec(stmt).all())


def followups_for(session: Session, *, submission_ids: Sequence[int]) -> dict[int, list[FollowUp]]:
    """The follow-ups of many records in one query (the pack would otherwise ask once per record)."""
    out: dict[int, list[FollowUp]] = {i: [] for i in submission_ids}
    if submission_ids:
        stmt = select(FollowUp).where(col(FollowUp.submission_id).in_(submission_ids)).order_by(col(FollowUp.id))
        for fu in session.exec(stmt).all():
            out[fu.submission_id].append(fu)
    return out


def outbox_payloads(session: Session, *, submission_id: int) -> list[str]:
    """The JSON payloads of every side effect queued about one record (e-mails carry their Message-ID)."""
    return list(session.exec(select(OutboxItem.payload).where(OutboxItem.submission_id == submission_id)).all())


def outbox_outcome(session: Session, *, key: str) -> tuple[str | None, str | None]:
    """(status, result) of the outbox item with this key; (None, None) if there is none."""
    row = session.exec(select(OutboxItem.status, OutboxItem.result).where(OutboxItem.key == key)).first()
    return (row[0], row[1]) if row else (None, None)


def count_recent_outbox(session: Session, *, kind: str, recipient: str, since: timedelta) -> int:
    """Items of `kind` for `recipient` created within `since`. Recipients are stored in lower case
    (bot.acks.recipient), so the comparison uses the recipient index: lower() of the column could
    not, and each filing then scanned every acknowledgement ever queued (quadratic in an import)."""
    stmt = select(func.count()).select_from(OutboxItem).where(
        OutboxItem.kind == kind,
        OutboxItem.recipient == recipient.lower(),
        col(OutboxItem.created_at) >= utcnow() - since,
    )
    return int(session.exec(stmt).one())


def set_status_if(
    session: Session, *, submission_id: int, expected: str, values: dict[str, object]
) -> bool:
    """Compare-and-set on the status: True only for the one writer that saw `expected` first."""
    res = session.execute(
        update(Submission)
        .where(col(Submission.id) == submission_id, col(Submission.status) == expected)
        .values(updated_at=utcnow(), **values)
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


def update_submission(session: Session, *, submission_id: int, values: dict[str, object]) -> None:
    session.execute(update(Submission).where(col(Submission.id) == submission_id).values(updated_at=utcnow(), **values))


def add_audit(
    session: Session,
    *,
    submission_id: int,
    actor: str,
    action: str,
    reason: str | None = None,
    before: dict[str, object] | None = None,
    after: dict[str, object] | None = None,
) -> Audit:
    row = Audit(
        submission_id=submission_id, actor=actor, action=action, reason=reason,
        before=json.dumps(before, default=str, ensure_ascii=False) if before is not None else None,
        after=json.dumps(after, default=str, ensure_ascii=False) if after is not None else None,
    )
    session.add(row)
    session.flush()
    return row


def audit_of(session: Session, *, submission_id: int) -> list[Audit]:
    stmt = select(Audit).where(Audit.submission_id == submission_id).order_by(col(Audit.id))
    return list(session.exec(stmt).all())
