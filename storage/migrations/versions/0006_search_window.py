"""A bounded window of the search index on SQLite: the newest records' rows in a second FTS5 table.

FTS5's bm25 weighs each word by walking every row of the table that holds it, so on a big store
a common word costs in proportion to the store. `submission_fts_recent` holds the index rows of
every record from `submission_fts_window.floor` on (storage.search keeps it so), and most queries
are answered from it; see storage.search.search. PostgreSQL needs nothing: its ranking reads only
the rows it ranks.

The window starts with the newest 5,000 records (storage.search.WINDOW when this was written);
the trigger that drops a deleted submission's index row now drops its window row too.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = "rowid, reference, title, fields, body, attachments"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    op.execute(
        "CREATE VIRTUAL TABLE submission_fts_recent USING fts5("
        "reference UNINDEXED, title, fields, body, attachments, tokenize='porter unicode61')"
    )
    op.execute("CREATE TABLE submission_fts_window (id INTEGER PRIMARY KEY CHECK (id = 1), floor INTEGER NOT NULL)")
    op.execute(
        "INSERT INTO submission_fts_window (id, floor) SELECT 1, CASE WHEN top > 5500 THEN top - 5000 ELSE 0 END"
        " FROM (SELECT coalesce(max(rowid), 0) AS top FROM submission_fts)"
    )
    op.execute(
        f"INSERT INTO submission_fts_recent ({_COLUMNS}) SELECT {_COLUMNS} FROM submission_fts"
        " WHERE rowid >= (SELECT floor FROM submission_fts_window)"
    )
    op.execute("DROP TRIGGER submission_fts_erase")
    op.execute(
        "CREATE TRIGGER submission_fts_erase AFTER DELETE ON submission BEGIN"
        " DELETE FROM submission_fts WHERE rowid = old.id;"
        " DELETE FROM submission_fts_recent WHERE rowid = old.id; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    op.execute("DROP TRIGGER submission_fts_erase")
    op.execute(
        "CREATE TRIGGER submission_fts_erase AFTER DELETE ON submission BEGIN"
        " DELETE FROM submission_fts WHERE rowid = old.id; END"
    )
    op.execute("DROP TABLE submission_fts_window")
    op.execute("DROP TABLE submission_fts_recent")
