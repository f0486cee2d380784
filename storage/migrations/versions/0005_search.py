"""Finding things: full-text index of evidence records, and normalised keys for corroboration.

The search index is derived data and dialect-specific, so it is not in the SQLModel metadata
(tests/test_migrations.py leaves it out of the comparison, see storage.search.INDEX_TABLES):

- SQLite: an FTS5 table `submission_fts` whose rowid is submission.id; a trigger drops the row when
  its submission is deleted (erasure), whoever deletes it.
- PostgreSQL: a plain table `submission_fts` (submission_id -> submission.id ON DELETE CASCADE) holding
  the same text columns and a generated, weighted tsvector with a GIN index ('english' config).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_PG_DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(fields, '')), 'B')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(body, '')), 'C')"
    " || setweight(to_tsvector('english'::regconfig, coalesce(attachments, '')), 'D')"
)


def upgrade() -> None:
    with op.batch_alter_table("submission") as b:
        b.add_column(sa.Column("body_key", sa.String(length=255), nullable=True))
        b.add_column(sa.Column("supplier_key", sa.String(length=255), nullable=True))
        b.create_index("ix_submission_corroboration", ["body_key", "supplier_key"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE submission_fts ("
            " submission_id integer PRIMARY KEY REFERENCES submission(id) ON DELETE CASCADE,"
            " title text, fields text, body text, attachments text,"
            f" document tsvector GENERATED ALWAYS AS ({_PG_DOCUMENT}) STORED)"
        )
        op.execute("CREATE INDEX ix_submission_fts_document ON submission_fts USING gin (document)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE submission_fts USING fts5("
            "reference UNINDEXED, title, fields, body, attachments, tokenize='porter unicode61')"
        )
        op.execute(
            "CREATE TRIGGER submission_fts_erase AFTER DELETE ON submission BEGIN"
            " DELETE FROM submission_fts WHERE rowid = old.id; END"
        )
    # Records filed before this revision are indexed by `evidence-bot search --reindex`.


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS submission_fts")
    else:
        # Before the batch below: rebuilding `submission` would drop the trigger with it anyway.
        op.execute("DROP TRIGGER IF EXISTS submission_fts_erase")
        op.execute("DROP TABLE IF EXISTS submission_fts")
    with op.batch_alter_table("submission") as b:
        b.drop_index("ix_submission_corroboration")
        b.drop_column("supplier_key")
        b.drop_column("body_key")
