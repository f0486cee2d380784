"""The durable outbox: side effects written with their cause, claimed with a lease, done once.

A worker claims due items by moving them to `sending` with `locked_until`; only the lease holder
may finish an item. A worker that dies mid-send loses its lease when it expires and another takes
over, so an effect is retried rather than lost. Items carry a unique `key`, so the same effect
enqueued twice is stored once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.db import unit_of_work
from storage.models import OutboxItem, utcnow
from storage.repo import _insert_ignore

MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    kind: str
    submission_id: int | None
    recipient: str | None
    payload: dict[str, Any]
    attempts: int
    # True when an earlier attempt may have had its effect (it timed out, or its worker died
    # holding the lease): a performer that can look for that effect should, before redoing it.
    resumed: bool = False
    # What an earlier attempt of a many-step effect noted on its way (note_progress), so a retry
    # can check each step that may have happened instead of repeating it.
    progress: str | None = None
    worker: str = ""  # who holds the lease: a performer noting progress writes as this worker


def enqueue(
    session: Session,
    *,
    key: str,
    kind: str,
    payload: dict[str, Any],
    submission_id: int | None = None,
    recipient: str | None = None,
) -> int | None:
    """Adds an effect to the caller's transaction; None when an effect with this key exists."""
    return _insert_ignore(
        session,
        OutboxItem,
        {
            "key": key,
            "kind": kind,
            "payload": json.dumps(payload),
            "submission_id": submission_id,
            "recipient": recipient,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": utcnow(),
            "created_at": utcnow(),
        },
        "key",
    )


def claim_due(
    engine: Engine, *, worker: str, kinds: Sequence[str], limit: int = 5, lease: timedelta = timedelta(seconds=60)
) -> list[Claimed]:
    """Leases up to `limit` due items of these kinds to `worker`."""
    now = utcnow()
    with unit_of_work(engine) as s:
        due = (
            select(OutboxItem.id)
            .where(
                col(OutboxItem.kind).in_(kinds),
                or_(
                    (col(OutboxItem.status) == "pending") & (col(OutboxItem.next_attempt_at) <= now),
                    (col(OutboxItem.status) == "sending") & (col(OutboxItem.locked_until) < now),
                ),
            )
            .order_by(col(OutboxItem.id))
            .limit(limit)
            # PostgreSQL: concurrent workers skip each other's rows; SQLite ignores it and
            # serialises writers with BEGIN IMMEDIATE instead.
            .with_for_update(skip_locked=True)
        )
        ids = [i for i in s.exec(due).all() if i is not None]
        if not ids:
            return []
        was = {r.id: r.status for r in s.exec(select(OutboxItem).where(col(OutboxItem.id).in_(ids))).all()}
        s.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id).in_(ids))
            .values(status="sending", locked_by=worker, locked_until=now + lease)
        )
        rows = s.exec(select(OutboxItem).where(col(OutboxItem.id).in_(ids)).order_by(col(OutboxItem.id))).all()
        return [
            Claimed(r.id or 0, r.key, r.kind, r.submission_id, r.recipient, json.loads(r.payload), r.attempts,
                    resumed=was.get(r.id) == "sending" or r.attempts > 0, progress=r.result, worker=worker)
            for r in rows
        ]


def _finish(engine: Engine, item_id: int, worker: str, **values: Any) -> bool:
    with unit_of_work(engine) as s:
        res = s.execute(
            update(OutboxItem)
            .where(
                col(OutboxItem.id) == item_id,
                col(OutboxItem.locked_by) == worker,
                col(OutboxItem.status) == "sending",
            )
            .values(locked_until=None, **values)
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]


def renew(engine: Engine, *, item_id: int, worker: str, lease: timedelta = timedelta(seconds=60)) -> bool:
    """Extends the worker's lease just before it acts; False if another worker has taken it over."""
    with unit_of_work(engine) as s:
        res = s.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id) == item_id, col(OutboxItem.locked_by) == worker,
                   col(OutboxItem.status) == "sending", col(OutboxItem.locked_until) > utcnow())
            .values(locked_until=utcnow() + lease)
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]


def note_progress(engine: Engine, *, item_id: int, worker: str, progress: str) -> bool:
    """Keeps a step of a many-step effect (in `result`, until the item is done) before the next
    step that could make it visible; False if the lease was lost."""
    with unit_of_work(engine) as s:
        res = s.execute(
            update(OutboxItem)
            .where(col(OutboxItem.id) == item_id, col(OutboxItem.locked_by) == worker,
                   col(OutboxItem.status) == "sending")
            .values(result=progress)
        )
        return bool(res.rowcount)  # type: ignore[attr-defined]


def mark_done(engine: Engine, *, item_id: int, worker: str, result: str | None = None) -> bool:
    """Records success; False if the lease was lost (another worker took the item over)."""
    return _finish(engine, item_id, worker, status="done", done_at=utcnow(), result=result)


def backoff(attempts: int, base: float = 30.0) -> timedelta:
    """30 s, 1 min, 2 min ... capped at an hour: fast enough for a blip, gentle on an outage."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def mark_failed(
    engine: Engine, *, item: Claimed, worker: str, error: str, permanent: bool = False, base: float = 30.0
) -> bool:
    """Schedules a retry with backoff, or gives up (status `failed`) when permanent or exhausted."""
    attempts = item.attempts + 1
    if permanent or attempts >= MAX_ATTEMPTS:
        return _finish(engine, item.id, worker, status="failed", attempts=attempts, last_error=error[:2000])
    return _finish(
        engine,
        item.id,
        worker,
        status="pending",
        attempts=attempts,
        last_error=error[:2000],
        next_attempt_at=utcnow() + backoff(attempts, base),
    )


def mark_skipped(engine: Engine, *, item_id: int, worker: str, why: str) -> bool:
    return _finish(engine, item_id, worker, status="skipped", done_at=utcnow(), result=why)


def count_by_status(engine: Engine, *, kind: str | None = None) -> dict[str, int]:

    with unit_of_work(engine, read_only=True) as s:  # no write lock: the doors commit meanwhile
        stmt = select(OutboxItem.status, func.count()).group_by(OutboxItem.status)
        if kind:
            stmt = stmt.where(OutboxItem.kind == kind)
        return {st: int(n) for st, n in s.exec(stmt).all()}
