"""The import's pipeline: parser processes read and parse the stored messages a few chunks
ahead while this process files them (bot.intake.file_batch, runs through bot.filing)."""

from __future__ import annotations

import multiprocessing
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from sqlalchemy.engine import Engine

from bot import intake
from bot.filed import Filed, Parsed
from bot.settings import Settings
from storage import repo
from storage.db import unit_of_work

POOL_MIN = 200  # below this many waiting messages the import parses in its own process
BATCH = 100  # messages per filing transaction: each commit waits for the disk (WAL, synchronous=FULL)
PARSE_CHUNK = 25  # messages per task for a parser process
AHEAD = 6  # chunks handed to the parsers before the filing has taken them


def file_waiting(engine: Engine, settings: Settings) -> Iterator[list[Filed]]:
    """Files every waiting message until none is left, BATCH per filing transaction, and
    yields what each batch filed. With many waiting, two parser processes (the import has the
    machine to itself) read and parse them from the database while this one files: filing is
    one writer's work, parsing is not."""
    while True:
        with unit_of_work(engine, read_only=True) as s:
            ids = repo.pending_inbound_ids(s, limit=100_000)
        if not ids:
            return
        progress = False
        if len(ids) >= POOL_MIN:
            batches = _parsed_batches(engine, settings, ids)
        else:
            batches = (intake.parse_many(engine, settings, ids[k : k + BATCH]) for k in range(0, len(ids), BATCH))
        for parsed in batches:
            filed = intake.file_batch(engine, settings, parsed)
            progress = progress or bool(filed)
            yield filed
        if not progress:
            return  # filed elsewhere meanwhile, or nothing can be: do not spin


def _parsed_batches(engine: Engine, settings: Settings, ids: list[int]) -> Iterator[list[Parsed]]:
    """Parsed messages, BATCH at a time and in order, from a pool of two parser processes
    that keeps a few chunks ahead of the filing. If the pool breaks (a parser process died), the
    rest is parsed here."""
    chunks = [ids[k : k + PARSE_CHUNK] for k in range(0, len(ids), PARSE_CHUNK)]
    pool = _parser_pool(engine)
    try:
        pending: deque[tuple[list[int], Future[list[Parsed]]]] = deque()
        todo = iter(chunks)
        batch: list[Parsed] = []
        broken = False
        while True:
            while not broken and len(pending) < AHEAD and (chunk := next(todo, None)) is not None:
                try:
                    fut = pool.submit(intake.parse_many_in_worker, settings, chunk)
                except BrokenProcessPool:  # it broke since the last submit: parsed here below
                    broken = True
                    fut = Future()
                pending.append((chunk, fut))
            if not pending:
                chunk = next(todo, None)
                if chunk is None:
                    break
                pending.append((chunk, Future()))
            chunk, fut = pending.popleft()
            parsed: list[Parsed] | None = None
            if not broken or fut.done():  # a chunk a parser finished before the break still counts
                try:
                    parsed = fut.result()
                except BrokenProcessPool:
                    broken = True
            batch.extend(intake.parse_many(engine, settings, chunk) if parsed is None else parsed)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _parser_pool(engine: Engine) -> ProcessPoolExecutor:
    """Two parser processes. On Linux they are forked from this one, which has imported the
    parser already: a spawned process imports it all again (about a second of CPU each, on the
    same two cores the import is using). Nothing of the database may cross a fork, so this
    process's connections are closed first; each parser opens its own (intake._worker_engine)."""
    if sys.platform.startswith("linux"):
        from bot import sender_check  # noqa: F401 - imported once here, not in each parser process

        engine.dispose()
        intake.forget_worker_engines()
        return ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork"))
    return ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
