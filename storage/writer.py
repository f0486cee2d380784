"""Group commit: the raw messages of concurrent SMTP sessions share one durable transaction.

A commit costs an fsync; one per message caps a door at the disk's fsync rate. Sessions that
arrive while a commit is in flight wait together and go down in the next one, so each still
gets its 250 only after its own bytes are on disk, and twenty sessions pay for a few fsyncs.
On SQLite the commit runs on the event loop through a raw connection (cheaper than any thread
hand-off while the disk is fast); PostgreSQL's network round trips run in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage.db import unit_of_work
from storage.repo import FastInboundInsert, InboundDraft, insert_inbound

log = logging.getLogger(__name__)

INLINE_MAX_SECONDS = 0.005
GATHER_TURNS = 4
BUSY_TIMEOUT_MS = 30_000  # as storage.db's engines: a writer waits its turn for up to 30 s


@dataclass(frozen=True)
class Stored:
    inbound_id: int
    created: bool


class GroupCommitter:
    """Queue drafts with `await store(draft)`; a single task commits them in batches."""

    def __init__(self, engine: Engine, *, max_batch: int = 64) -> None:
        self._engine = engine
        self._insert = FastInboundInsert(engine.dialect)
        sqlite = engine.dialect.name == "sqlite"
        self._raw = _SqliteDoor(engine, self._insert, fallback=self._commit_orm) if sqlite else None
        # An SQLite commit is a local write and an fsync (well under a millisecond here): cheaper
        # on the event loop itself than the two thread hand-offs, each waiting for the GIL, that
        # a worker thread costs. PostgreSQL commits are network round trips: those go to a thread.
        # A disk that turns slow (a commit over INLINE_MAX_SECONDS), or a write lock that another
        # connection holds, sends the commit to a thread, so the loop never stalls behind either.
        self._last_commit = 0.0
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[InboundDraft, asyncio.Future[Stored]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        """Finishes what is queued (each waiting session still gets its answer), then stops."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._raw is not None:
            self._raw.close()

    async def store(self, draft: InboundDraft) -> Stored:
        if self._task is None or self._task.done():
            raise RuntimeError("group committer is not running")
        fut: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((draft, fut))
        # A client that hangs up mid-commit cancels this future, never the commit: the draft is
        # already in the committer's queue, and the committer skips futures that are done.
        return await fut

    async def _commit_batch(self, drafts: list[InboundDraft]) -> list[Stored]:
        started = time.perf_counter()
        results = None
        if self._raw is not None and self._last_commit < INLINE_MAX_SECONDS:
            # On the loop only if the write lock is free right now: waiting for another writer
            # (the parser filing a record, a CLI command) would stall every SMTP session.
            results = self._raw.commit(drafts, wait=False)
        if results is None:
            results = await asyncio.to_thread(self._commit, drafts)
        # Measured in a thread too, so a disk that is fast again brings the commits back.
        self._last_commit = time.perf_counter() - started
        return results

    def _commit(self, drafts: list[InboundDraft]) -> list[Stored]:
        if self._raw is not None:
            results = self._raw.commit(drafts, wait=True)
            assert results is not None
            return results
        return self._commit_orm(drafts)

    def _commit_orm(self, drafts: list[InboundDraft]) -> list[Stored]:
        try:
            with self._engine.begin() as conn:
                return [Stored(*r) for r in self._insert(conn, drafts)]
        except IntegrityError:
            # Another process stored one of these keys between our look-up and our insert:
            # one by one, each insert skips what exists.
            with unit_of_work(self._engine) as s:
                return [Stored(*insert_inbound(s, draft=d)) for d in drafts]

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # A few more turns of the loop before committing: sessions whose data is already in
            # the socket buffers join this batch, so one fsync is shared by more messages. Each
            # turn costs microseconds when nothing is waiting (bench/smtp_bench.py: 2 cores, 20
            # clients, one turn ~5 messages a batch, four turns ~2x fewer fsyncs per message).
            for _ in range(GATHER_TURNS):
                await asyncio.sleep(0)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._commit_batch([d for d, _ in batch])
            except Exception as exc:  # the whole batch failed: every waiting session hears 451
                log.error("storing %d message(s) failed: %s", len(batch), exc)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(StoreFailed(str(exc)))
            else:
                for (_, fut), res in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(res)
            finally:
                for _ in batch:
                    self._queue.task_done()


class StoreFailed(Exception):
    """The message could not be committed; the door must answer 4xx so the sender retries."""


class _SqliteDoor:
    """The door's own SQLite connection: BEGIN IMMEDIATE, one INSERT, COMMIT, straight through the
    DB-API. SQLAlchemy's per-transaction machinery (pool checkout, events, execution contexts)
    costs more than the insert itself for a batch of a few small messages, and it all runs on the
    event loop that speaks SMTP. The connection comes from the engine, so it has the same pragmas.
    """

    def __init__(self, engine: Engine, insert: FastInboundInsert,
                 fallback: Callable[[list[InboundDraft]], list[Stored]]) -> None:
        self._engine = engine
        self._insert = insert
        self._fallback = fallback
        self._conn: Any = None
        self._busy_ms = -1

    def commit(self, drafts: list[InboundDraft], *, wait: bool) -> list[Stored] | None:
        """Stores the batch; without `wait`, None at once if another connection holds the lock."""
        if self._conn is None:
            self._conn = self._engine.raw_connection()
            self._busy_ms = -1
        cur = self._conn.cursor()
        try:
            busy_ms = BUSY_TIMEOUT_MS if wait else 0
            if busy_ms != self._busy_ms:
                cur.execute(f"PRAGMA busy_timeout={busy_ms}")
                self._busy_ms = busy_ms
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if wait or exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                return None
            try:
                rows = self._insert.on_cursor(cur, drafts)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError:
            return self._fallback(drafts)
        except Exception:
            self.close(broken=True)  # not reused: the next batch opens a fresh connection
            raise
        finally:
            cur.close()
        return [Stored(*r) for r in rows]

    def close(self, *, broken: bool = False) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                if broken:
                    self._conn.invalidate()
                else:
                    self._conn.close()
            self._conn = None
