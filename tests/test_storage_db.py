"""storage.db on SQLite: what a unit of work locks, and connections opened beside a writer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import event, text

from bot import drafts, intake
from bot.settings import Settings
from storage import search
from storage.db import make_engine, unit_of_work
from storage.migrate import upgrade
from tests.test_intake import GOOD


def test_a_read_only_unit_reads_beside_a_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/evidence.db"
    upgrade(url)
    engine = make_engine(url)
    intake.store_now(engine, drafts.draft(GOOD, envelope_from="ann@example.org", rcpts=["evidence@localhost"]))
    intake.process_pending(engine, Settings.model_validate({"DATABASE_URL": url}))
    engine.dispose()  # every connection below is opened while the writer holds the lock
    holder = sqlite3.connect(tmp_path / "evidence.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    engine = make_engine(url)
    try:
        begins: list[str] = []
        event.listen(engine, "before_cursor_execute",
                     lambda _c, _cur, stmt, *_a: begins.append(stmt) if stmt.startswith("BEGIN") else None)
        with unit_of_work(engine, read_only=True) as s:
            assert [h.reference for h in search.search(s, words="waste")] == ["EV-000001"]
        assert begins == ["BEGIN"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()


def test_a_unit_that_may_write_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/evidence.db"
    upgrade(url)
    engine = make_engine(url)
    begins: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, stmt, *_a: begins.append(stmt) if stmt.startswith("BEGIN") else None)
    with unit_of_work(engine) as s:
        assert s.execute(text("SELECT count(*) FROM submission")).scalar() == 0
    engine.dispose()
    assert begins == ["BEGIN IMMEDIATE"]  # two writers queue rather than fail on a lock upgrade
