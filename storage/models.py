"""ORM tables. The schema itself is created and evolved by the Alembic migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    text,
)
from sqlalchemy import Text as TextType
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and SQLite (text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.astimezone(dt.UTC)
        # SQLite keeps text; a naive UTC value keeps comparisons between stored values exact.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
TaskId = BigInteger().with_variant(Integer(), "sqlite")
Tags = JSON().with_variant(JSONB(), "postgresql")

# Priorities are stored as ranks so that sorting by priority is a plain index-friendly order.
PRIORITY_RANKS: dict[str, int] = {"low": 1, "medium": 2, "high": 3}
PRIORITY_NAMES: dict[int, str] = {rank: name for name, rank in PRIORITY_RANKS.items()}


class Base(DeclarativeBase):
    pass


class TaskRow(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        Index("ix_tasks_user_completed", "user_id", "completed"),
        # The changes feed reads a user's rows in the order their writes committed.
        Index("ix_tasks_user_seq", "user_id", "seq", unique=True),
        Index("ix_tasks_deleted_at", "deleted_at"),
        # A user's oldest deleted task: the one a delete past the bound purges.
        Index("ix_tasks_user_deleted", "user_id", "deleted_at"),
        # Reminders not yet delivered, by user: the claim asks for those of the users with a
        # stream in its process, so its reads grow with them, not with every user's history.
        Index(
            "ix_tasks_reminders_due",
            "user_id",
            "remind_at",
            postgresql_where=text("reminded_at IS NULL"),
            sqlite_where=text("reminded_at IS NULL"),
        ),
        # Never hand a deleted task's id to a new task: a client may still hold the old one.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(TaskId, primary_key=True, autoincrement=True)
    # Better Auth owns its `user` table; this service only keeps the id it was given.
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(TextType, nullable=True)
    completed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    priority: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    tags: Mapped[list[str]] = mapped_column(Tags, nullable=False)
    due_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Counts the writes of this task: its ETag. A timestamp alone could repeat within a tick.
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    # A normalised RFC 5545 RRULE (the spec's subset), read in `timezone` from `due_date`.
    recurrence: Mapped[str | None] = mapped_column(String(255), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    # The id of the series' first task; every occurrence made from it carries the same.
    series_id: Mapped[int | None] = mapped_column(TaskId, nullable=True)
    # The occurrence that completing this one made.
    next_task_id: Mapped[int | None] = mapped_column(TaskId, nullable=True)
    # Seconds before due_date; remind_at is computed from both by every write.
    remind_before: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remind_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The owner's change sequence number of the latest write of this task (the changes feed).
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # Set while the task is deleted but restorable; the row is then the delete's tombstone.
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When a stream wrote this occurrence's reminder (delivered); moving remind_at clears it.
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Until when a server process holds the reminder to hand to its streams (a lease: if no
    # stream confirms it, another claim may take it after); moving remind_at clears it.
    reminder_claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TaskOwnerRow(Base):
    """One per user with tasks, updated (and so locked) by each of the user's writes.

    It keeps the count the quota is checked against, and hands out the user's change sequence
    numbers: taken under this row's lock, they are in the order the writes commit.
    """

    __tablename__ = "task_owners"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    task_count: Mapped[int] = mapped_column(Integer, nullable=False)
    # How many of those are completed: with task_count, the total of a list filtered by status.
    completed_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    change_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # The latest sequence number of a purged tombstone: an older feed cursor missed a delete.
    purged_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # Deleted tasks kept for restore, and live idempotency keys: each bounded by the quota too.
    tombstone_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    key_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class IdempotencyKeyRow(Base):
    """A create made with an Idempotency-Key: what was asked (hashed) and the task it made."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "key"),
        # A user's oldest key: the one a keyed create past the bound forgets.
        Index("ix_idempotency_keys_user_expires", "user_id", "expires_at"),
    )

    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    # The created task as it was answered, so that a replay answers the same.
    response: Mapped[str] = mapped_column(TextType, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class StreamTicketRow(Base):
    """A ticket that opens one event stream, for a browser's EventSource (which cannot send an
    Authorization header). Only its digest is kept: a copy of this table opens no stream."""

    __tablename__ = "stream_tickets"
    __table_args__ = (Index("ix_stream_tickets_expires", "expires_at"),)

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    # When the credential that asked for the ticket expires: the stream closes then too.
    credential_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ConversationRow(Base):
    """A chat conversation (a ChatKit thread): the user's alone."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_created", "user_id", "created_at", "id"),)

    # A random UUID: a guessed id names no one's conversation.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    title: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)
    # What ChatKit keeps of a thread besides its title (its status, metadata), as its JSON.
    thread: Mapped[dict[str, Any] | None] = mapped_column(Tags, nullable=True)


class MessageRow(Base):
    """One message of a conversation (a ChatKit thread item)."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_seq", "user_id", "conversation_id", "seq"),
        Index("ix_messages_id", "id", unique=True),
        {"sqlite_autoincrement": True},
    )

    # The order the messages were stored in: a clock could give two the same instant.
    seq: Mapped[int] = mapped_column(TaskId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    conversation_id: Mapped[str] = mapped_column(String(36), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    content: Mapped[str] = mapped_column(TextType, nullable=False)
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(Tags, nullable=False)
    # The ChatKit item this message is, as its JSON, when ChatKit stored it (it may hold more
    # than text: widgets, tool-call items); None for a message of POST /chat.
    item: Mapped[dict[str, Any] | None] = mapped_column(Tags, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=False)


class ChatOwnerRow(Base):
    """One per user who chats: the counts the chat quotas are held to, under this row's lock."""

    __tablename__ = "chat_owners"

    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    conversation_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    message_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
