"""The import's pipeline (bot.cli.import_pipeline): parser processes ahead of the filing.

With POOL_MIN or more messages waiting, two parser processes (forked on Linux) read and parse
chunks of them from the database while this process files them in batches. Every message must
be filed exactly once, references in the order the messages were stored, on both databases;
and a parser process that dies part-way (the OOM killer, a segfault in a C extension) must cost
neither a message nor a duplicate: the rest is parsed in the importing process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot import drafts, intake
from bot.cli import import_pipeline
from bot.filed import Parsed
from bot.settings import Settings
from storage.db import unit_of_work
from storage.repo import insert_inbound

N = import_pipeline.POOL_MIN + 40  # enough for the pool, a partial last chunk and batch
_REAL_PARSE_IN_WORKER = intake.parse_many_in_worker


def message(i: int) -> bytes:
    return (f"From: Witness {i} <witness{i}@example.org>\r\nTo: evidence@localhost\r\n"
            f"Subject: Payroll outsourcing, account {i}\r\nMessage-ID: <pipeline-{i}@example.org>\r\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n"
            f"Public body: Borough Council {i}\r\nSupplier: Supplier {i} Ltd\r\n\r\n"
            f"The payroll contract was a failure in year {i % 7 + 1}: staff were paid late.\r\n").encode()


def store(engine: Engine, n: int) -> list[int]:
    ids = []
    with unit_of_work(engine) as s:
        for i in range(n):
            d = drafts.draft(message(i), envelope_from=f"witness{i}@example.org", rcpts=["evidence@localhost"],
                             peer="import")
            inbound_id, created = insert_inbound(s, draft=d)
            assert created
            ids.append(inbound_id)
    return ids


def filed_rows(engine: Engine) -> list[tuple[int, str | None, str]]:
    with engine.connect() as conn:
        return [(int(r[0]), r[1], r[2]) for r in conn.execute(text(
            "SELECT inbound_id, reference, kind FROM submission ORDER BY inbound_id"))]


def waiting(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM inbound WHERE state = 'received'")).scalar_one())


def assert_each_filed_once_in_order(engine: Engine, ids: Sequence[int], yielded: list[int]) -> None:
    rows = filed_rows(engine)
    assert [r[0] for r in rows] == list(ids)  # one record per message, none twice
    assert [r[1] for r in rows] == [f"EV-{k:06d}" for k in range(1, len(ids) + 1)]  # in stored order
    assert {r[2] for r in rows} == {"evidence"}
    assert sorted(yielded) == list(ids)  # and the pipeline reported each message once
    assert waiting(engine) == 0


def parsed_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids parsed in this (the importing) process; the parser processes' calls are their own."""
    here: list[int] = []
    real = intake.parse_many
    me = os.getpid()

    def counting(engine: Engine, settings: Settings, inbound_ids: Sequence[int]) -> list[Parsed]:
        if os.getpid() == me:
            here.extend(inbound_ids)
        return real(engine, settings, inbound_ids)

    monkeypatch.setattr(intake, "parse_many", counting)
    return here


def test_the_pool_files_every_message_once_in_order(engine: Engine, settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    here = parsed_here(monkeypatch)
    ids = store(engine, N)
    yielded = [f.inbound_id for batch in import_pipeline.file_waiting(engine, settings) for f in batch]
    assert_each_filed_once_in_order(engine, ids, yielded)
    assert here == []  # every message was parsed by the parser processes


def test_below_the_pool_size_the_import_parses_in_its_own_process(engine: Engine, settings: Settings,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pool(*_a: object) -> None:
        raise AssertionError("a pool for fewer than POOL_MIN messages")

    monkeypatch.setattr(import_pipeline, "_parser_pool", no_pool)
    here = parsed_here(monkeypatch)
    ids = store(engine, 30)
    yielded = [f.inbound_id for batch in import_pipeline.file_waiting(engine, settings) for f in batch]
    assert_each_filed_once_in_order(engine, ids, yielded)
    assert here == ids


def _dies_on_the_third_chunk(settings: Settings, inbound_ids: Sequence[int]) -> list[Parsed]:
    # Runs in a forked parser process: the test's monkeypatch is inherited by the fork.
    if min(inbound_ids) > 2 * import_pipeline.PARSE_CHUNK:
        os._exit(9)  # as a SIGKILLed parser: no exception, no clean-up, the pool breaks
    return _REAL_PARSE_IN_WORKER(settings, inbound_ids)


def test_a_parser_process_that_dies_loses_nothing_and_files_nothing_twice(
        engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(os, "fork"):
        pytest.skip("the parser processes are forked only where fork exists (Linux)")
    monkeypatch.setattr(intake, "parse_many_in_worker", _dies_on_the_third_chunk)
    here = parsed_here(monkeypatch)
    ids = store(engine, N)
    assert min(ids) == 1  # a fresh database: the first two chunks parse in the pool, then it breaks
    yielded = [f.inbound_id for batch in import_pipeline.file_waiting(engine, settings) for f in batch]
    assert_each_filed_once_in_order(engine, ids, yielded)
    # Everything from the dead parser's chunk on was parsed here, in order and once; so was any
    # earlier chunk the other parser had not handed back when the pool broke (the pool stops it).
    chunk = import_pipeline.PARSE_CHUNK
    assert here == sorted(set(here))
    assert set(ids[2 * chunk:]) <= set(here)
