"""State for the mail doors beyond SMTP: webhook replay tokens and the IMAP reader's position.

`inbound_token` remembers each signed webhook token (Mailgun's `token`, or the raw endpoint's
signature) with the dedupe key of the message it carried, so a replayed token with another
message is refused while a provider's retry of the same message is recognised. Rows older than
the freshness window are useless and pruned.

`imap_state` keeps, per mailbox, the UIDVALIDITY and the highest UID whose raw copy is committed,
so a restart knows where it was and a changed UIDVALIDITY means a re-scan (the dedupe key keeps
that from storing anything twice).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_token",
        sa.Column("token", sa.String(length=200), primary_key=True),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_inbound_token_used_at", "inbound_token", ["used_at"])
    op.create_table(
        "imap_state",
        sa.Column("mailbox", sa.String(length=255), primary_key=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("imap_state")
    op.drop_index("ix_inbound_token_used_at", table_name="inbound_token")
    op.drop_table("inbound_token")
