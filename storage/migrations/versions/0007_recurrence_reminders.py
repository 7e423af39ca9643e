"""Recurring tasks and reminders.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TASK_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("recurrence", sa.String(255), nullable=True))
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))
        batch.add_column(sa.Column("series_id", _TASK_ID, nullable=True))
        batch.add_column(sa.Column("next_task_id", _TASK_ID, nullable=True))
        batch.add_column(sa.Column("remind_before", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    # Reminders not yet delivered, by user (see storage/models.py).
    op.create_index(
        "ix_tasks_reminders_due",
        "tasks",
        ["user_id", "remind_at"],
        postgresql_where=sa.text("reminded_at IS NULL"),
        sqlite_where=sa.text("reminded_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_reminders_due", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        for column in (
            "reminded_at",
            "remind_at",
            "remind_before",
            "next_task_id",
            "series_id",
            "timezone",
            "recurrence",
        ):
            batch.drop_column(column)
