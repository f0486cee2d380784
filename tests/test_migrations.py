"""The Alembic migrations build exactly the schema the models describe, and walk back down."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from storage.db import make_engine
from storage.migrate import alembic_config, current_revision, head_revision, is_up_to_date
from storage.search import INDEX_TABLES


def _not_search_index(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    """The full-text index (storage.search) is dialect-specific derived data built by raw DDL in
    migration 0005 (an FTS5 table and its shadow tables on SQLite, a tsvector table on PostgreSQL),
    so the models don't describe it and the comparison leaves it out."""
    table = name if type_ == "table" else parent_names.get("table_name")
    return not (table and table.startswith(INDEX_TABLES))


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"include_name": _not_search_index})
            assert compare_metadata(ctx, SQLModel.metadata) == []
        assert is_up_to_date(engine) and current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    cfg = alembic_config(db_url)
    command.downgrade(cfg, "base")
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert not is_up_to_date(engine)
        command.upgrade(cfg, "head")
        assert is_up_to_date(engine)
        assert {"inbound", "submission", "attachment", "followup", "outbox", "counter", "audit"} <= set(
            inspect(engine).get_table_names()
        )
    finally:
        engine.dispose()


def test_the_quick_head_is_alembics() -> None:
    from storage.migrate import _plain_head

    assert _plain_head() == head_revision() is not None
