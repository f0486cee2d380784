"""Group commit: the raw messages of concurrent SMTP sessions share one durable transaction.

A commit costs an fsync; one per message caps a door at the disk's fsync rate. Sessions that
arrive while a commit is in flight wait together and go down in the next one, so each still
gets its 250 only after its own bytes are on disk, and twenty sessions pay for a few fsyncs.
The commit runs in a worker thread so the event loop keeps talking SMTP meanwhile.
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
from storage.repo import FastInboundInsert, InboundDraft, insert_inbound

log = logging.getLogger(__name__)

INLINE_MAX_SECONDS = 0.005


@dataclass(frozen=True)
class Stored:
    inbound_id: int
    created: bool


class GroupCommitter:
    """Queue drafts with `await store(draft)`; a single task commits them in batches."""

    def __init__(self, engine: Engine, *, max_batch: int = 64) -> None:
        self._engine = engine
        self._insert = FastInboundInsert(engine.dialect)
        # An SQLite commit is a local write and an fsync (well under a millisecond here): cheaper
        # on the event loop itself than the two thread hand-offs, each waiting for the GIL, that
        # a worker thread costs. PostgreSQL commits are network round trips: those go to a thread.
        # A disk that turns slow (a commit over INLINE_MAX_SECONDS) sends commits back to a thread
        # until it is fast again, so the loop never stalls behind it.
        self._inline = engine.dialect.name == "sqlite"
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

    async def store(self, draft: InboundDraft) -> Stored:
        if self._task is None or self._task.done():
            raise RuntimeError("group committer is not running")
        fut: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        await self._queue.put((draft, fut))
        # shield: a client that hangs up mid-commit cancels its own wait, never the commit.
        return await asyncio.shield(fut)

    def _commit(self, drafts: list[InboundDraft]) -> list[Stored]:
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
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                drafts = [d for d, _ in batch]
                if self._inline and self._last_commit < INLINE_MAX_SECONDS:
                    started = time.perf_counter()
                    results = self._commit(drafts)
                    self._last_commit = time.perf_counter() - started
                else:
                    started = time.perf_counter()
                    results = await asyncio.to_thread(self._commit, drafts)
                    # Measured in a thread, a fast disk shows through and brings the loop back.
                    self._last_commit = time.perf_counter() - started
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
