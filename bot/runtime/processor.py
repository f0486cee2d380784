"""Files stored messages in the background, parsing each in a worker process.

Parsing is CPU work (MIME, HTML, PDF); in the service's own process it would hold the GIL and
slow the SMTP door that shares the event loop. A worker process also gives a hard time limit: a
message that keeps the parser busy past it has its worker killed and is filed as unparsed (its
raw copy kept), instead of wedging the service.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from sqlalchemy.engine import Engine

from bot import intake
from bot.settings import Settings
from storage import repo
from storage.db import unit_of_work

log = logging.getLogger(__name__)


def _init_worker(log_level: str, log_format: str) -> None:
    """The worker's start: a lower priority, and the service's log format (a spawned process
    starts with no logging set up, and its lines must read like the rest, JSON included)."""
    os.nice(10)
    from bot.runtime import logs

    logs.configure(log_level, log_format)


# Messages the worker files in one transaction: one commit (and fsync) for them all, while the
# time a batch holds SQLite's write lock stays short (about 20 x 5 ms: the parsing is done first).
BATCH = 20


class Processor:
    def __init__(self, engine: Engine, settings: Settings, *, time_limit: float = 120.0) -> None:
        self.engine = engine
        self.settings = settings
        self.time_limit = time_limit
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the service has threads (forking them is unsafe).
            # Filing is background work: at a lower CPU priority the worker never slows the SMTP
            # door's answers; under a flood it lags and catches up afterwards.
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker,
                                             initargs=(self.settings.log_level, self.settings.log_format))
        return self._pool

    def _discard_pool(self, *, wait: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for p in list(getattr(pool, "_processes", {}).values()):
            p.kill()  # a parser stuck in C code does not listen to anything gentler
        pool.shutdown(wait=wait, cancel_futures=True)

    def close(self) -> None:
        # The worker is killed, not asked: a stop must not wait for a long parse (or, as seen
        # here, for a worker at nice 10 that takes many seconds to notice the pool's shutdown).
        # Nothing is lost: filing is one transaction, and a message it did not finish is still
        # `received`, so the next start parses it again.
        self._discard_pool(wait=True)

    async def process_one(self, inbound_id: int) -> intake.Filed | None:
        """Parses and files one message in the worker process; files it unparsed if that fails."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor(), intake.process_in_worker, self.settings, inbound_id),
                timeout=self.time_limit,
            )
        except TimeoutError:
            log.error("parsing message %d took over %g s; filed unparsed", inbound_id, self.time_limit)
            error = f"parsing took longer than {self.time_limit:g} s"
        except BrokenProcessPool:
            log.error("the parser process died on message %d; filed unparsed", inbound_id)
            error = "the parser process died (out of memory?)"
        self._discard_pool()
        loaded = await asyncio.to_thread(intake.load_received, self.engine, self.settings, inbound_id=inbound_id)
        if loaded is None:
            return None  # the worker had filed it after all
        return await asyncio.to_thread(intake.file_parsed, self.engine, self.settings, loaded[0], None, error)

    async def process_batch(self, inbound_ids: list[int]) -> list[intake.Filed]:
        """Parses and files several messages in the worker, in ONE filing transaction
        (intake.file_many). If the batch overruns the time limit or kills the worker, each
        message is done again on its own (process_one): the one to blame is then filed unparsed,
        the others normally."""
        if len(inbound_ids) == 1:
            res = await self.process_one(inbound_ids[0])
            return [res] if res is not None else []
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor(), intake.file_many_in_worker, self.settings, inbound_ids),
                timeout=self.time_limit,
            )
        except TimeoutError:
            log.warning("a batch of %d messages took over %g s; filing them one by one", len(inbound_ids),
                        self.time_limit)
        except BrokenProcessPool:
            log.warning("the parser process died on a batch of %d messages; filing them one by one",
                        len(inbound_ids))
        self._discard_pool()
        done = []
        for i in inbound_ids:
            res = await self.process_one(i)
            if res is not None:
                done.append(res)
        return done

    async def process_pending(self, limit: int = 50, *, stop: asyncio.Event | None = None,
                              pause: Callable[[], bool] | None = None, batch: int = BATCH) -> list[intake.Filed]:
        """Files up to `limit` waiting messages, oldest first, `batch` per filing transaction;
        returns early once `stop` is set (a backlog must not hold up a shutdown: what is left is
        filed after the next start), or when `pause` says so (the doors are busy: they come
        first), both looked at between batches."""
        ids = await asyncio.to_thread(self._pending, limit)
        done = []
        for k in range(0, len(ids), batch):
            if (stop is not None and stop.is_set()) or (pause is not None and pause()):
                break
            done.extend(await self.process_batch(ids[k : k + batch]))
        return done

    def _pending(self, limit: int) -> list[int]:
        with unit_of_work(self.engine, read_only=True) as s:
            return repo.pending_inbound_ids(s, limit=limit)
