"""Group commit: the raw messages of concurrent sessions share one durable transaction.

A commit costs an fsync; one per message caps a door at the disk's fsync rate. Messages that
arrive while a commit is in flight wait together and go down in the next one, so each door still
answers only after its own bytes are on disk, and twenty senders pay for a few fsyncs.

The commit goes straight to the driver (storage.doors). On SQLite one thread of its own commits
batch after batch: the event loop only hands a message over and is woken with the result, so it
goes on reading requests while the disk syncs (on the loop itself, every fsync would stall every
door for its duration; a disk under load takes milliseconds). On PostgreSQL the commit goes
through psycopg's async connection, its network round trips awaited on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from storage.db import unit_of_work
from storage.doors import Duplicate, PostgresDoor, SqliteDoor
from storage.repo import FastInboundInsert, InboundDraft, insert_inbound

log = logging.getLogger(__name__)

GATHER_TURNS = 4  # PostgreSQL: loop turns before a commit, so sessions already readable join it
Waiting = tuple[InboundDraft, "asyncio.Future[Stored]"]


@dataclass(frozen=True)
class Stored:
    inbound_id: int
    created: bool


class GroupCommitter:
    """`await store(draft)` returns once the draft is committed; batches form while a commit runs."""

    def __init__(self, engine: Engine, *, max_batch: int = 64) -> None:
        self._engine = engine
        self._insert = FastInboundInsert(engine.dialect)
        self._max_batch = max_batch
        self._sqlite = SqliteDoor(engine, self._insert) if engine.dialect.name == "sqlite" else None
        self._pg = PostgresDoor(engine, self._insert) if engine.dialect.name == "postgresql" else None
        self._loop: asyncio.AbstractEventLoop | None = None
        # SQLite: what waits for the commit thread (a C queue: a put costs the loop well under a
        # microsecond, where a threading.Condition's notify is Python code); None asks it to end.
        self._handed: queue.SimpleQueue[Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closing = False  # set on the loop by stop(): nothing more is handed over after it
        # Other databases: a task on the loop takes batches from this queue.
        self._queue: asyncio.Queue[Waiting] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._sqlite is not None:
            self._closing = False
            self._thread = threading.Thread(target=self._commit_thread, name="group-commit", daemon=True)
            self._thread.start()
        else:
            self._task = self._loop.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        """Finishes what is queued (each waiting session still gets its answer), then stops."""
        if self._thread is not None:
            self._closing = True
            self._handed.put(None)  # after everything handed over before it
            # Joined off the loop: the thread hands its last results to the loop as it finishes.
            await asyncio.to_thread(self._thread.join)
            self._thread = None
            await asyncio.sleep(0)  # the last results' callbacks run
            assert self._sqlite is not None
            self._sqlite.close()
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pg is not None:
            await self._pg.close()

    async def store(self, draft: InboundDraft) -> Stored:
        assert self._loop is not None
        fut: asyncio.Future[Stored] = self._loop.create_future()
        # A client that hangs up mid-commit cancels this future, never the commit: the draft is
        # already handed over, and the committer skips futures that are done.
        if self._thread is not None:
            if self._closing or not self._thread.is_alive():
                raise RuntimeError("group committer is not running")
            self._handed.put((draft, fut))
        elif self._task is not None and not self._task.done():
            self._queue.put_nowait((draft, fut))
        else:
            raise RuntimeError("group committer is not running")
        return await fut

    # ------------------------------------------------------------ SQLite: the commit thread

    def _commit_thread(self) -> None:
        assert self._sqlite is not None and self._loop is not None
        closing = False
        while not closing:
            batch, closing = self._take_batch()
            if not batch:
                return
            try:
                self._loop.call_soon_threadsafe(self._settle, batch, self._commit_batch([d for d, _ in batch]))
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                return
            # Nothing of this batch stays referenced here while the thread waits for the next one
            # (it could wait for hours, holding a 25 MB message).
            del batch

    def _take_batch(self) -> tuple[list[Waiting], bool]:
        """Waits for a message, then takes everything handed over while the last commit ran;
        also says whether stop() asked the thread to end."""
        first = self._handed.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                nxt = self._handed.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batch, True
            batch.append(nxt)
        return batch, False

    def _commit_batch(self, drafts: list[InboundDraft]) -> list[Stored] | Exception:
        assert self._sqlite is not None
        try:
            try:
                return [Stored(*r) for r in self._sqlite.commit(drafts)]
            except Duplicate:
                return self._commit_orm(drafts)
        except Exception as exc:  # the whole batch failed: every waiting session hears 451/503
            return exc

    # ------------------------------------------------------------ other databases: a task on the loop

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # A few more turns of the loop before committing: sessions whose data is already in
            # the socket buffers join this batch, so one commit is shared by more messages.
            for _ in range(GATHER_TURNS):
                await asyncio.sleep(0)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            drafts = [d for d, _ in batch]
            results: list[Stored] | Exception
            try:
                assert self._pg is not None
                try:
                    results = [Stored(*r) for r in await self._pg.commit(drafts)]
                except Duplicate:
                    results = await asyncio.to_thread(self._commit_orm, drafts)
            except Exception as exc:
                results = exc
            self._settle(batch, results)
            for _ in range(len(batch)):
                self._queue.task_done()
            del batch, drafts, results  # not kept while waiting for the next (see _commit_thread)

    # ------------------------------------------------------------ both

    def _settle(self, batch: list[Waiting], results: list[Stored] | Exception) -> None:
        if isinstance(results, Exception):
            log.error("storing %d message(s) failed: %s", len(batch), results)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(StoreFailed(str(results)))
            return
        for (_, fut), res in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(res)

    def _commit_orm(self, drafts: list[InboundDraft]) -> list[Stored]:
        try:
            with self._engine.begin() as conn:
                return [Stored(*r) for r in self._insert(conn, drafts)]
        except IntegrityError:
            # Another process stored one of these keys between our look-up and our insert:
            # one by one, each insert skips what exists.
            with unit_of_work(self._engine) as s:
                return [Stored(*insert_inbound(s, draft=d)) for d in drafts]


class StoreFailed(Exception):
    """The message could not be committed; the door must answer 4xx so the sender retries."""

