"""Campaigns: near-identical submissions grouped under their first record.

`submission.campaign_id` is the first record's id on every record of a campaign (NULL when a
record stands alone); `submission.campaign_size` the count, kept on the first record.
`campaign_band` holds the MinHash band keys of records that may start a campaign, indexed, so a
new record looks up its candidates instead of being compared with every record (bot.similarity).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


# Plain ALTER TABLE and CREATE INDEX, not batch mode: on SQLite a batch rebuilds `submission`,
# which would drop the search triggers of 0005 with it.


def upgrade() -> None:
    op.add_column("submission", sa.Column("campaign_id", sa.Integer(), nullable=True))
    op.add_column("submission", sa.Column("campaign_size", sa.Integer(), nullable=True))
    op.create_index("ix_submission_campaign_id", "submission", ["campaign_id"])
    op.create_table(
        "campaign_band",
        sa.Column("band_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"]),
        sa.PrimaryKeyConstraint("band_key", "submission_id"),
    )
    op.create_index("ix_campaign_band_submission_id", "campaign_band", ["submission_id"])


def downgrade() -> None:
    op.drop_index("ix_campaign_band_submission_id", table_name="campaign_band")
    op.drop_table("campaign_band")
    op.drop_index("ix_submission_campaign_id", table_name="submission")
    op.drop_column("submission", "campaign_size")
    op.drop_column("submission", "campaign_id")
