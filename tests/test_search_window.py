"""The search window (storage.search.WINDOW, migration 0006): broad queries are answered from a
second index table holding the newest records' rows, narrow ones from the whole index; the window
table is kept in step with filing, edits and deletions, on SQLite and on PostgreSQL.

Each test shrinks the window to a few records so that a few dozen filed records exercise it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.decisions import decide, edit_fields
from bot.review import Action
from bot.settings import Settings
from handlers.slack.find import results_text
from storage import search
from storage.db import make_engine, unit_of_work
from storage.migrate import upgrade
from tests.test_search import file_mail, find, refs, sub_id

COUNT = 40


@pytest.fixture
def small_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "WINDOW", 10)
    monkeypatch.setattr(search, "WINDOW_PRUNE", 4)


def file_many(engine: Engine, settings: Settings) -> list[str]:
    """COUNT records, all about a council's payroll; record i also carries the word `markerI`."""
    return [file_mail(engine, settings, i, subject=f"Payroll report {i}",
                      body=f"Public body: Kent CC\nSupplier: Capita plc\n\nThe council payroll failed, marker{i}.\n")
            for i in range(COUNT)]


@pytest.fixture
def filed(engine: Engine, settings: Settings, small_window: None) -> list[str]:
    return file_many(engine, settings)


def oldest_in_window(engine: Engine) -> int:
    with unit_of_work(engine, read_only=True) as s:
        ids = sorted(search.indexed_ids(s))
    return ids[-1] - search.WINDOW  # every record from here on is in the window, on either database


def window_state(engine: Engine) -> tuple[int, set[int], set[int]]:
    key = "submission_id" if engine.dialect.name == "postgresql" else "rowid"
    with unit_of_work(engine, read_only=True) as s:
        floor = s.execute(text("SELECT floor FROM submission_fts_window")).scalar_one()
        recent = {r[0] for r in s.execute(text(f"SELECT {key} FROM submission_fts_recent"))}
        return floor, recent, search.indexed_ids(s)


def test_the_window_holds_exactly_the_newest_records(engine: Engine, filed: list[str]) -> None:
    floor, recent, everything = window_state(engine)
    assert len(everything) == COUNT
    assert floor > 0, "the window never moved"
    assert recent == {i for i in everything if i >= floor}
    assert search.WINDOW <= len(recent) <= search.WINDOW + search.WINDOW_PRUNE + 1


def test_broad_queries_come_from_the_window_and_say_so(engine: Engine, filed: list[str]) -> None:
    hits = find(engine, "payroll", limit=5)
    assert len(hits) == 5
    assert min(sub_id(engine, r) for r in refs(hits)) >= oldest_in_window(engine) - search.WINDOW_PRUNE - 1
    assert hits.note == search.window_note()
    assert "best among the newest 10 records" in results_text("payroll", hits)  # and Slack says so
    assert all("\u27e6payroll\u27e7" in h.snippet.lower() for h in hits)  # snippets come from the window too


def test_a_window_of_the_newest_matches_is_the_ranked_answer(
    engine: Engine, filed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "RANKED_MAX", 3)
    hits = find(engine, "payroll", limit=20)
    # The newest three matches are all in the window, so they are the store's newest three.
    assert refs(hits) and set(refs(hits)) <= set(filed[-3:])
    assert hits.note == search.ranked_note()


def test_a_narrow_query_reaches_records_older_than_the_window(engine: Engine, filed: list[str]) -> None:
    assert sub_id(engine, filed[0]) < oldest_in_window(engine) - search.WINDOW_PRUNE
    hits = find(engine, "marker0")
    assert refs(hits) == [filed[0]] and hits.note is None
    # Too few matches in the window for a page: the whole index answers, old records included.
    everything = find(engine, "payroll", limit=50)
    assert set(refs(everything)) == set(filed) and everything.note is None


def test_a_view_that_hides_the_window_falls_back_to_the_whole_index(
    engine: Engine, settings: Settings, filed: list[str]
) -> None:
    decide(engine, settings, reference=filed[1], action=Action.APPROVE, actor="U0REVIEWER")
    hits = find(engine, "payroll", statuses=["approved"], limit=5)
    assert refs(hits) == [filed[1]]


def test_edits_and_deletions_keep_both_tables_in_step(engine: Engine, filed: list[str]) -> None:
    old, new = filed[0], filed[-1]
    edit_fields(engine, reference=old, changes={"supplier": "Zorblax Holdings"}, actor="U0REVIEWER")
    edit_fields(engine, reference=new, changes={"supplier": "Quuxcorp Services"}, actor="U0REVIEWER")
    floor, recent, _ = window_state(engine)
    assert sub_id(engine, old) not in recent and sub_id(engine, new) in recent  # an old edit stays out
    assert refs(find(engine, "zorblax")) == [old]
    assert refs(find(engine, "quuxcorp")) == [new]
    with unit_of_work(engine) as s:
        ida = sub_id(engine, new)
        for table in ("outbox", "audit", "attachment", "followup"):
            s.execute(text(f"DELETE FROM {table} WHERE submission_id = :i"), {"i": ida})
        s.execute(text("DELETE FROM submission WHERE id = :i"), {"i": ida})  # the trigger's job
    _, recent, everything = window_state(engine)
    assert ida not in recent and ida not in everything
    with unit_of_work(engine) as s:
        search.remove(s, submission_id=sub_id(engine, filed[-2]))
    _, recent, everything = window_state(engine)
    assert sub_id(engine, filed[-2]) not in recent | everything


def test_rebuild_refills_the_window_from_the_index(engine: Engine, filed: list[str]) -> None:
    before = window_state(engine)
    with unit_of_work(engine) as s:
        s.execute(text("DELETE FROM submission_fts_recent"))
        search.rebuild_window(s)
    floor, recent, everything = window_state(engine)
    assert recent == {i for i in everything if i >= floor} and len(recent) == search.WINDOW + 1
    assert floor >= before[0]


def test_sqlite_migration_0006_builds_the_window_from_an_existing_index(tmp_path: Path) -> None:
    """On SQLite only: the FTS5 index takes rows without submissions, so 6,000 are quick to make."""
    url = f"sqlite:///{tmp_path}/old.db"
    upgrade(url, "0005")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:  # an index as 0005 left it: 6,000 rows
            conn.execute(text("INSERT INTO submission_fts (rowid, title) VALUES (:i, :t)"),
                         [{"i": i, "t": f"record {i}"} for i in range(1, 6001)])
        upgrade(url)
        floor, recent, everything = window_state(engine)
        assert floor == 1000 and recent == set(range(1000, 6001)) and len(everything) == 6000
    finally:
        engine.dispose()
