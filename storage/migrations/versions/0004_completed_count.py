"""Each owner's count of completed live tasks: the totals of lists filtered by status.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "task_owners",
        sa.Column("completed_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE task_owners SET completed_count = (SELECT count(*) FROM tasks "
        "WHERE tasks.user_id = task_owners.user_id AND tasks.completed "
        "AND tasks.deleted_at IS NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("task_owners") as table:
        table.drop_column("completed_count")
