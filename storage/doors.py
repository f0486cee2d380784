"""The doors' own database connections, for the group commit's one statement per batch.

SQLAlchemy's per-transaction machinery (pool checkout, events, execution contexts) costs more
than the insert itself for a batch of a few small messages: on SQLite it would double the commit
thread's work (storage.writer), on PostgreSQL it would need a thread per commit. These go
straight to the driver: the DB-API connection SQLAlchemy made (same pragmas, busy_timeout
included) on SQLite, psycopg's async connection on PostgreSQL, so a commit's network round trips
are awaited on the loop.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from storage.repo import FastInboundInsert, InboundDraft

if TYPE_CHECKING:
    import psycopg

# SQLite keeps a statement's last bound values until it is bound again, and the connection's
# statement cache keeps one INSERT per batch size: a 25 MB message would stay in memory (SQLite's
# own copy), once per batch size, for as long as the connection lives (libpq, likewise, its send
# buffer). After a batch this big the connection is closed for good, which frees all that; the
# next batch opens another.
RELEASE_AFTER_BYTES = 1 << 20
Rows = list[tuple[int, bool]]


def _big(drafts: list[InboundDraft]) -> bool:
    return sum(len(d.raw) for d in drafts) >= RELEASE_AFTER_BYTES


class Duplicate(Exception):
    """Another process stored one of the batch's keys between look-up and insert: go row by row."""


class SqliteDoor:
    """BEGIN IMMEDIATE, one INSERT, COMMIT on a DB-API connection of the engine's pool."""

    def __init__(self, engine: Engine, insert: FastInboundInsert) -> None:
        self._engine = engine
        self._insert = insert
        self._conn: Any = None

    def commit(self, drafts: list[InboundDraft]) -> Rows:
        """Stores the batch, waiting its turn (busy_timeout) if another connection holds the lock."""
        if self._conn is None:
            self._conn = self._engine.raw_connection()
        try:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._insert.on_cursor(cur, drafts)
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
            finally:
                cur.close()  # before the connection may be closed below
        except sqlite3.IntegrityError as exc:
            raise Duplicate from exc
        except Exception:
            self.close(broken=True)  # not reused: the next batch opens a fresh connection
            raise
        if _big(drafts):
            self.close(broken=True)  # closed, not pooled: see RELEASE_AFTER_BYTES
        return rows

    def close(self, *, broken: bool = False) -> None:
        """Back to the engine's pool; with `broken`, closed for good (its statements finalised)."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                if broken:
                    self._conn.invalidate()
                else:
                    self._conn.close()
            self._conn = None


class PostgresDoor:
    """One psycopg AsyncConnection; the batch's statements and its commit are awaited on the loop."""

    def __init__(self, engine: Engine, insert: FastInboundInsert) -> None:
        # psycopg is imported only where PostgreSQL is configured: nothing on SQLite needs it, and
        # every module loaded is more for the garbage collector to scan (see bot.runtime.service.serve).
        import psycopg

        self._psycopg = psycopg
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._insert = insert
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def commit(self, drafts: list[InboundDraft]) -> Rows:
        if self._conn is None or self._conn.closed:
            self._conn = await self._psycopg.AsyncConnection.connect(self._conninfo, connect_timeout=10)
        conn = self._conn

        async def execute(sql: str, params: tuple[Any, ...]) -> Sequence[Any]:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

        try:
            async with conn.transaction():
                rows = await self._insert.run_async(execute, drafts)
        except self._psycopg.errors.IntegrityError as exc:
            raise Duplicate from exc
        except Exception:
            await self.close()  # not reused: the next batch opens a fresh connection
            raise
        if _big(drafts):
            # libpq keeps its send buffer at the largest size it ever needed, for as long as the
            # connection lives: a 25 MB message would stay in memory. A new connection is cheap
            # next to such a message.
            await self.close()
        return rows

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
