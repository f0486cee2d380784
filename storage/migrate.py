"""Alembic, driven from code: `evidence-bot db upgrade` and the start-up check of `serve`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (with Mako) is imported only to migrate or when the quick check below cannot say: it
# was a tenth of the start-up of every CLI command, which all ask whether the schema is current.

MIGRATIONS = Path(__file__).parent / "migrations"


class NotMigrated(Exception):
    """The database schema is missing or old; the message says what to run."""


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser treats % as interpolation; a password may contain one.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_up_to_date(engine: Engine) -> bool:
    head = _plain_head()
    if head is None:
        return current_revision(engine) == head_revision()
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        return list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) == [head]


def newer_schema(engine: Engine) -> str | None:
    """The database's revision when this version does not know it (a newer evidence-bot migrated
    the database), else None."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    current = current_revision(engine)
    if current is None:
        return None
    try:
        ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(current)
    except CommandError:
        return current
    return None


def not_migrated(engine: Engine) -> NotMigrated:
    """What to tell an operator whose database is not at this version's schema: `db upgrade`, or,
    for a database a newer version migrated, not that ("Can't locate revision" would follow)."""
    newer = newer_schema(engine)
    if newer is not None:
        return NotMigrated(f"the database's schema ({newer}) is from a newer evidence-bot than this one (which "
                           f"knows up to {head_revision()}); run the newer version, or restore a backup taken "
                           "before it")
    return NotMigrated("the database is not migrated; run: evidence-bot db upgrade")


_ASSIGN = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:['\"]([^'\"]+)['\"]|None)\s*$", re.MULTILINE)


def _plain_head() -> str | None:
    """The one head of a straight line of migrations, read from the `revision = "..."` and
    `down_revision = "..."` lines of versions/; None when the files say anything less plain
    (branches, merges, tuples), and Alembic is asked instead."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((m.group(1), m.group(2)) for m in _ASSIGN.finditer(path.read_text(encoding="utf-8")))
        if "revision" not in found or "down_revision" not in found or found["revision"] is None:
            return None
        revisions[found["revision"]] = found["down_revision"]
    heads = set(revisions) - {d for d in revisions.values() if d is not None}
    roots = [r for r, d in revisions.items() if d is None]
    return heads.pop() if len(heads) == 1 and len(roots) == 1 else None
