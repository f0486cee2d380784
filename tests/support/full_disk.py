"""A migrated SQLite database with almost no room left: a real "database or disk is full" error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from storage.db import make_engine
from storage.migrate import upgrade


def nearly_full_engine(path: Path, room_pages: int = 40) -> tuple[str, Engine]:
    """(url, engine) of a fresh database whose connections may grow it by `room_pages` pages only
    (SQLite's max_page_count; ~160 KB at 4 KB pages), as a full disk would allow."""
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _nearly_full(dbapi_conn: Any, _rec: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA page_count")
        pages = cur.fetchone()[0]
        cur.execute(f"PRAGMA max_page_count={pages + room_pages}")
        cur.close()

    return url, engine
