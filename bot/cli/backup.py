"""`evidence-bot backup FILE`: a consistent, checked copy of the SQLite database, taken while
`serve` keeps taking mail; on PostgreSQL, the pg_dump command to use instead.

The copy is SQLite's online backup API into FILE.tmp, then `PRAGMA integrity_check` on the copy,
then a rename, so FILE is either a whole checked backup or absent.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sqlite3
import sys
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.cli.errors import UserError
from bot.settings import Settings

PAGES_PER_STEP = 1024  # 4 MB a step at SQLite's default page size
STEP_PAUSE_SECONDS = 0.005
LOCK_WAIT_SECONDS = 30.0


def run(settings: Settings, target: Path, *, force: bool) -> int:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "postgresql":
        print(pg_dump_hint(settings.database_url, target))
        return 0
    source = Path(url.database or "")
    if not url.database or url.database == ":memory:" or not source.is_file():
        raise UserError(f"no SQLite database at {source} (DATABASE_URL)")
    if target.resolve() == source.resolve():
        raise UserError("FILE is the database itself; choose another name")
    if any(target.resolve() == Path(f"{source}{s}").resolve() for s in ("-wal", "-shm", "-journal")):
        raise UserError(f"{target} is one of the database's own files; choose another name")
    if target.is_dir():  # --force or not: a folder is not replaced by a file
        raise UserError(f"{target} is a folder; name the backup file, e.g. {target / 'evidence-backup.db'}")
    if not target.parent.is_dir():
        raise UserError(f"cannot write {target}: no such folder {target.parent}")
    if target.exists() and not force:
        raise UserError(f"{target} exists; choose another name or add --force to replace it")
    started = time.monotonic()
    size, records, messages = copy_sqlite(source, target)
    print(f"backed up {source} to {target}: {size:,} bytes, {records} record(s), {messages} stored message(s), "
          f"integrity ok, {time.monotonic() - started:.1f} s")
    return 0


def copy_sqlite(source: Path, target: Path) -> tuple[int, int, int]:
    """Copies, checks and renames into place; returns (bytes, records, stored messages)."""
    tmp = target.with_name(target.name + ".tmp")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
        leftover.unlink(missing_ok=True)  # an earlier run that was interrupted
    try:
        src = sqlite3.connect(source, timeout=LOCK_WAIT_SECONDS)  # only read from
    except sqlite3.Error as e:
        raise UserError(f"cannot open {source}: {e}") from None
    try:
        dst = sqlite3.connect(tmp)
        try:
            wal = str(src.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
            # In WAL mode (what `db upgrade` sets) a reader never blocks the door's writers, so
            # the whole copy is one step: one read transaction, one consistent snapshot. Copied
            # in several steps it would restart after every commit the door makes meanwhile, and
            # a steady stream of mail could keep it from ever finishing. Without WAL, a read
            # blocks writers: small steps with pauses between let the door's commits through.
            src.backup(dst, pages=-1 if wal else PAGES_PER_STEP, sleep=STEP_PAUSE_SECONDS)
            # The copy stands alone: one file, no -wal beside it to lose on the way to storage.
            dst.execute("PRAGMA journal_mode=DELETE")
            problems = [r[0] for r in dst.execute("PRAGMA integrity_check").fetchall()]
            if problems != ["ok"]:
                raise UserError(f"the copy failed its integrity check: {'; '.join(problems[:3])}")
            records = _count(dst, "submission")
            messages = _count(dst, "inbound")
        finally:
            dst.close()
    except sqlite3.Error as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"backup failed: {e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    _fsync(tmp)
    try:
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)  # not left beside FILE, a database-sized copy nobody asked for
        raise UserError(f"cannot write {target}: {e.strerror or e}") from None
    _fsync(target.parent)  # the rename itself reaches the disk
    return target.stat().st_size, records, messages


def _count(conn: sqlite3.Connection, table: str) -> int:
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not migrated: a copy of an empty database is still a copy


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    with contextlib.suppress(OSError):
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def pg_dump_hint(database_url: str, target: Path) -> str:
    """What to run instead on PostgreSQL, password left out (PGPASSWORD or ~/.pgpass supply it)."""
    url = make_url(database_url)
    # _replace, not set(): URL.set() takes password=None to mean "leave it as it is".
    safe = url._replace(drivername="postgresql", password=None).render_as_string(hide_password=False)
    dump = f"pg_dump --format=custom --no-owner --file={shlex.quote(str(target))} {shlex.quote(safe)}"
    restore = f"pg_restore --clean --if-exists --no-owner --dbname={shlex.quote(safe)} {shlex.quote(str(target))}"
    where = "PGPASSWORD in the environment or ~/.pgpass" if url.password else "~/.pgpass if it needs one"
    print("PostgreSQL: back up with pg_dump (a consistent snapshot while serve runs); "
          f"the password comes from {where}.", file=sys.stderr)
    return f"{dump}\n# to restore (serve stopped):\n# {restore}"
