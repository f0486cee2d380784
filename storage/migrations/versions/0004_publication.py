"""Publication preference and lateness on submission.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submission") as b:
        b.add_column(sa.Column("publication", sa.String(length=24), nullable=False, server_default="named"))
        b.add_column(sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("submission") as b:
        b.drop_column("late")
        b.drop_column("publication")
