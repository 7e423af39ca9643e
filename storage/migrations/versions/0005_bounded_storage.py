"""Each owner's count of deleted tasks and of idempotency keys: what bounds them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "task_owners",
        sa.Column("tombstone_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "task_owners", sa.Column("key_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE task_owners SET tombstone_count = (SELECT count(*) FROM tasks "
        "WHERE tasks.user_id = task_owners.user_id AND tasks.deleted_at IS NOT NULL)"
    )
    op.execute(
        "UPDATE task_owners SET key_count = (SELECT count(*) FROM idempotency_keys "
        "WHERE idempotency_keys.user_id = task_owners.user_id)"
    )
    # The oldest of one user's deleted tasks and keys: what makes room for a newer one.
    op.create_index("ix_tasks_user_deleted", "tasks", ["user_id", "deleted_at"])
    op.create_index(
        "ix_idempotency_keys_user_expires", "idempotency_keys", ["user_id", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_user_expires", table_name="idempotency_keys")
    op.drop_index("ix_tasks_user_deleted", table_name="tasks")
    with op.batch_alter_table("task_owners") as table:
        table.drop_column("key_count")
        table.drop_column("tombstone_count")
