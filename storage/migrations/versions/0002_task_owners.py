"""A row per task owner, holding their task count (the quota is checked against it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_owners",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("task_count", sa.Integer(), nullable=False),
    )
    op.execute(
        "INSERT INTO task_owners (user_id, task_count) "
        "SELECT user_id, count(*) FROM tasks GROUP BY user_id"
    )


def downgrade() -> None:
    op.drop_table("task_owners")
