"""What the conversation store answers: conversations, their messages, and pages of each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    # What ChatKit keeps of its thread besides the title, as JSON; None for POST /chat's.
    thread: dict[str, Any] | None = None


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    role: str
    content: str
    tool_calls: list[dict[str, Any]]
    created_at: dt.datetime
    item: dict[str, Any] | None = None
    seq: int = 0


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[Conversation]
    total: int
    next_cursor: str | None


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]
    total: int
    next_cursor: str | None


@dataclass(frozen=True)
class NewMessage:
    """A message to store, as the first of a new conversation."""

    role: str
    content: str
    tool_calls: Sequence[dict[str, Any]] = ()
    # ChatKit's item, and the id and time it was given.
    item: dict[str, Any] | None = None
    message_id: str | None = None
    created_at: dt.datetime | None = None
