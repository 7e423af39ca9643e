"""Chat conversations and their messages, and the counts their quotas are held to.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("thread", _JSON, nullable=True),
    )
    op.create_index(
        "ix_conversations_user_created", "conversations", ["user_id", "created_at", "id"]
    )
    op.create_table(
        "messages",
        sa.Column("seq", _ID, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tool_calls", _JSON, nullable=False),
        sa.Column("item", _JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_messages_conversation_seq", "messages", ["user_id", "conversation_id", "seq"]
    )
    op.create_index("ix_messages_id", "messages", ["id"], unique=True)
    op.create_table(
        "chat_owners",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("conversation_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("message_count", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("chat_owners")
    op.drop_index("ix_messages_id", "messages")
    op.drop_index("ix_messages_conversation_seq", "messages")
    op.drop_table("messages")
    op.drop_index("ix_conversations_user_created", "conversations")
    op.drop_table("conversations")
