"""Engines and sessions: SQLite tuned for durable commits, PostgreSQL through psycopg."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

READ_ONLY = "evidence_read_only"  # an execution option: this unit only reads


def make_engine(url: str, **kw: Any) -> Engine:
    # An error's text names its statement but not its values: those are messages, addresses and
    # evidence, and errors end up in the log (bot.runtime.logs).
    kw.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            # WAL lets readers run beside the writer; synchronous=FULL makes each commit
            # reach the disk before we answer 250 (NORMAL could lose the last commits on power loss).
            cur = dbapi_conn.cursor()
            # Set WAL only when it is not set yet (migrations set it for good): asking to set it
            # fails at once, busy handler or not, while another connection holds the write lock.
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Take the write lock at BEGIN so two writers queue instead of failing on upgrade.
            # A read-only unit (unit_of_work(read_only=True)) takes none: in WAL mode it reads a
            # snapshot beside the writer, and a search never holds up the SMTP door's commits.
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        # pysqlite's own transaction handling would issue BEGIN itself; hand it to SQLAlchemy.
        @event.listens_for(engine, "connect", insert=True)
        def _no_auto_begin(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, **kw)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def unit_of_work(engine: Engine, *, dry_run: bool = False, read_only: bool = False) -> Iterator[Session]:
    """One session, one transaction: committed on success, rolled back on any error.

    With dry_run it is always rolled back: the caller sees what its changes would be, and keeps none.
    read_only is for units that only read (search, lists, the pack): on SQLite they take no write
    lock, so a long read never holds up the SMTP door's commits (WAL gives them a snapshot).
    """
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            if dry_run:
                session.rollback()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
