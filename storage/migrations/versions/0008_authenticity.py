"""Who really sent it: the HELO name the SMTP client gave, and each record's sender checks.

`inbound.helo` is what the client said in HELO/EHLO (SPF checks it; NULL for webhooks, IMAP and
imports, which have no SMTP client). `submission.authenticity` is the record's `authenticity`
as JSON text (SPF, DKIM and DMARC results and the verdict); NULL for Slack submissions and for
records filed before this revision.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: on SQLite a batch rebuilds `submission`, which would drop
# the search triggers of 0005 with it. SQLite (3.35+) adds and drops a plain column in place.


def upgrade() -> None:
    op.add_column("inbound", sa.Column("helo", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
    op.add_column("submission", sa.Column("authenticity", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("submission", "authenticity")
    op.drop_column("inbound", "helo")
