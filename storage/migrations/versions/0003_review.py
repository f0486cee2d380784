"""Review: decision columns and the Slack summary's location on submission; the audit table.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submission") as b:
        b.add_column(sa.Column("slack_user_id", sa.String(length=32), nullable=True))
        b.add_column(sa.Column("decided_by", sa.Text(), nullable=True))
        b.add_column(sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        b.add_column(sa.Column("decision_reason", sa.Text(), nullable=True))
        b.add_column(sa.Column("review_channel", sa.String(length=32), nullable=True))
        b.add_column(sa.Column("review_ts", sa.String(length=32), nullable=True))
        b.create_index("ix_submission_slack_user_id", ["slack_user_id"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_submission_id", "audit", ["submission_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_submission_id", table_name="audit")
    op.drop_table("audit")
    with op.batch_alter_table("submission") as b:
        b.drop_index("ix_submission_slack_user_id")
        for c in ("review_ts", "review_channel", "decision_reason", "decided_at", "decided_by", "slack_user_id"):
            b.drop_column(c)
