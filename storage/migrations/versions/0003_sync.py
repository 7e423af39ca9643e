"""Versions (ETags), per-user change sequence numbers, tombstones and idempotency keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("tasks", sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("tasks", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    # Ids only grow, so they already order each user's existing tasks as their creates did.
    op.execute("UPDATE tasks SET seq = id")
    op.create_index("ix_tasks_user_seq", "tasks", ["user_id", "seq"], unique=True)
    op.create_index("ix_tasks_deleted_at", "tasks", ["deleted_at"])

    op.add_column(
        "task_owners",
        sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.add_column(
        "task_owners",
        sa.Column("purged_seq", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE task_owners SET change_seq = COALESCE("
        "(SELECT max(seq) FROM tasks WHERE tasks.user_id = task_owners.user_id), 0)"
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("task_owners") as batch:
        batch.drop_column("purged_seq")
        batch.drop_column("change_seq")
    op.drop_index("ix_tasks_deleted_at", table_name="tasks")
    op.drop_index("ix_tasks_user_seq", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("seq")
        batch.drop_column("version")
