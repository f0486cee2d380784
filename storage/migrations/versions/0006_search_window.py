"""A bounded window of the search index: the newest records' rows in a second index table.

On a big store a common word's index entries grow with the store: FTS5's bm25 walks all of them to
weigh the word, and PostgreSQL's GIN index returns all of them before the newest are picked.
`submission_fts_recent` holds the index rows of every record from `submission_fts_window.floor` on
(storage.search keeps it so), and most queries are answered from it; see storage.search.search.
It has the shape of `submission_fts` on each database: FTS5 on SQLite, a tsvector table with a GIN
index on PostgreSQL, its rows dropped with their submission (trigger / ON DELETE CASCADE).

The window starts with the newest 5,000 records (storage.search.WINDOW when this was written).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    key = "submission_id" if pg else "rowid"
    columns = f"{key}, title, fields, body, attachments" + ("" if pg else ", reference")
    if pg:
        # LIKE copies the columns, the generated tsvector, the primary key and the GIN index, so the
        # window cannot drift from the index it mirrors; foreign keys it leaves out.
        op.execute("CREATE TABLE submission_fts_recent (LIKE submission_fts INCLUDING ALL)")
        op.execute(
            "ALTER TABLE submission_fts_recent ADD FOREIGN KEY (submission_id)"
            " REFERENCES submission(id) ON DELETE CASCADE"
        )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE submission_fts_recent USING fts5("
            "reference UNINDEXED, title, fields, body, attachments, tokenize='porter unicode61')"
        )
    op.execute("CREATE TABLE submission_fts_window (id INTEGER PRIMARY KEY CHECK (id = 1), floor INTEGER NOT NULL)")
    op.execute(
        "INSERT INTO submission_fts_window (id, floor) SELECT 1, CASE WHEN top > 5500 THEN top - 5000 ELSE 0 END"
        f" FROM (SELECT coalesce(max({key}), 0) AS top FROM submission_fts) AS t"
    )
    op.execute(
        f"INSERT INTO submission_fts_recent ({columns}) SELECT {columns} FROM submission_fts"
        f" WHERE {key} >= (SELECT floor FROM submission_fts_window)"
    )
    if not pg:
        op.execute("DROP TRIGGER submission_fts_erase")
        op.execute(
            "CREATE TRIGGER submission_fts_erase AFTER DELETE ON submission BEGIN"
            " DELETE FROM submission_fts WHERE rowid = old.id;"
            " DELETE FROM submission_fts_recent WHERE rowid = old.id; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER submission_fts_erase")
        op.execute(
            "CREATE TRIGGER submission_fts_erase AFTER DELETE ON submission BEGIN"
            " DELETE FROM submission_fts WHERE rowid = old.id; END"
        )
    op.execute("DROP TABLE submission_fts_window")
    op.execute("DROP TABLE submission_fts_recent")
