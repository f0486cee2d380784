"""Group commit: the raw messages of concurrent SMTP sessions share one durable transaction.

A commit costs an fsync; one per message caps a door at the disk's fsync rate. Sessions that
arrive while a commit is in flight wait together and go down in the next one, so each still
gets its 250 only after its own bytes are on disk, and twenty sessions pay for a few fsyncs.
The commit goes straight to the driver (storage.doors): on SQLite on the event loop itself
(cheaper than any thread hand-off while the disk is fast), on PostgreSQL through psycopg's async
connection, its network round trips awaited on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage.db import unit_of_work
from storage.doors import Duplicate, PostgresDoor, SqliteDoor
from storage.repo import FastInboundInsert, InboundDraft, insert_inbound

log = logging.getLogger(__name__)

INLINE_MAX_SECONDS = 0.005
GATHER_TURNS = 4


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
        self._sqlite = SqliteDoor(engine, self._insert) if sqlite else None
        self._pg = PostgresDoor(engine, self._insert) if engine.dialect.name == "postgresql" else None
        # An SQLite commit is a local write and an fsync (well under a millisecond here): cheaper
        # on the event loop itself than the two thread hand-offs, each waiting for the GIL, that
        # a worker thread costs. A disk that turns slow (a commit over INLINE_MAX_SECONDS), or a
        # write lock that another connection holds, sends the commit to a thread, so the loop
        # never stalls behind either. PostgreSQL's round trips are awaited on the loop.
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
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()

    async def store(self, draft: InboundDraft) -> Stored:
        if self._task is None or self._task.done():
            raise RuntimeError("group committer is not running")
        fut: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((draft, fut))
        # A client that hangs up mid-commit cancels this future, never the commit: the draft is
        # already in the committer's queue, and the committer skips futures that are done.
        return await fut

    async def _commit_batch(self, drafts: list[InboundDraft]) -> list[Stored]:
        try:
            rows = await self._commit_fast(drafts)
        except Duplicate:
            return await asyncio.to_thread(self._commit_orm, drafts)
        return [Stored(*r) for r in rows]

    async def _commit_fast(self, drafts: list[InboundDraft]) -> list[tuple[int, bool]]:
        if self._pg is not None:
            return await self._pg.commit(drafts)
        assert self._sqlite is not None
        started = time.perf_counter()
        rows = None
        if self._last_commit < INLINE_MAX_SECONDS:
            # On the loop only if the write lock is free right now: waiting for another writer
            # (the parser filing a record, a CLI command) would stall every SMTP session.
            rows = self._sqlite.commit(drafts, wait=False)
        if rows is None:
            rows = await asyncio.to_thread(self._sqlite.commit, drafts, wait=True)
        # Measured in a thread too, so a disk that is fast again brings the commits back.
        self._last_commit = time.perf_counter() - started
        assert rows is not None
        return rows

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

