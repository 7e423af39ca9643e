"""Chat conversations and their messages, the user's alone: every function takes the owner's
id, and another user's conversation is not found, as one that does not exist.

The counts the quotas are held to live in the owner's `chat_owners` row, moved in the same
transaction as the rows they count: two writes at once can never both take the last place.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from storage import clock
from storage.chat_records import Conversation as Conversation
from storage.chat_records import ConversationPage as ConversationPage
from storage.chat_records import Message as Message
from storage.chat_records import MessagePage as MessagePage
from storage.chat_records import NewMessage as NewMessage
from storage.cursors import (
    conversation_cursor,
    conversation_position,
    message_cursor,
    message_position,
)
from storage.errors import ChatQuotaExceeded, ConversationNotFound
from storage.models import ChatOwnerRow, ConversationRow, MessageRow
from storage.statements import insert_ignoring_conflict

_OWNER = bindparam("owner", type_=ConversationRow.user_id.type)
_CONVERSATION = bindparam("conversation", type_=ConversationRow.id.type)
_CONVERSATIONS = cast(Table, ConversationRow.__table__)
_MESSAGES = cast(Table, MessageRow.__table__)
_OWNERS = cast(Table, ChatOwnerRow.__table__)
_CONVERSATION_COLUMNS = (
    _CONVERSATIONS.c.id,
    _CONVERSATIONS.c.title,
    _CONVERSATIONS.c.created_at,
    _CONVERSATIONS.c.updated_at,
    _CONVERSATIONS.c.thread,
)
_MESSAGE_COLUMNS = (
    _MESSAGES.c.id,
    _MESSAGES.c.conversation_id,
    _MESSAGES.c.role,
    _MESSAGES.c.content,
    _MESSAGES.c.tool_calls,
    _MESSAGES.c.created_at,
    _MESSAGES.c.item,
    _MESSAGES.c.seq,
)
_MINE = (_CONVERSATIONS.c.user_id == _OWNER, _CONVERSATIONS.c.id == _CONVERSATION)
_IN_IT = (_MESSAGES.c.user_id == _OWNER, _MESSAGES.c.conversation_id == _CONVERSATION)
_GET = select(*_CONVERSATION_COLUMNS).where(*_MINE)
_LOCK_CONVERSATION = (
    update(_CONVERSATIONS)
    .where(*_MINE)
    .values(updated_at=bindparam("now"))
    .returning(_CONVERSATIONS.c.id)
)
_COUNT_CONVERSATIONS = select(func.count()).where(_CONVERSATIONS.c.user_id == _OWNER)
_COUNT_MESSAGES = select(func.count()).where(*_IN_IT)
_DELETE_MESSAGES = delete(_MESSAGES).where(*_IN_IT)
_DELETE_CONVERSATION = delete(_CONVERSATIONS).where(*_MINE)
_INSERT_CONVERSATION = insert(_CONVERSATIONS)
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.seq)


def _counted(column: str, within: bool) -> Any:
    """Move the owner's `column` by `how_many`, only within `quota` when `within`."""
    counted = _OWNERS.c[column]
    condition = [_OWNERS.c.user_id == _OWNER]
    if within:
        condition.append(counted + bindparam("how_many") <= bindparam("quota"))
    return (
        update(_OWNERS)
        .where(*condition)
        .values({column: counted + bindparam("how_many")})
        .returning(_OWNERS.c.user_id)
    )


_GROW = {name: _counted(name, True) for name in ("conversation_count", "message_count")}
_SHRINK = (
    update(_OWNERS)
    .where(_OWNERS.c.user_id == _OWNER)
    .values(
        conversation_count=_OWNERS.c.conversation_count - bindparam("conversations"),
        message_count=_OWNERS.c.message_count - bindparam("messages"),
    )
)


class ConversationStore:
    """One transaction per call, scoped to the owner."""

    def __init__(self, engine: Engine, *, conversation_quota: int, message_quota: int) -> None:
        self._engine = engine
        self._quota = {"conversation_count": conversation_quota, "message_count": message_quota}
        self._add_owner = insert_ignoring_conflict(engine.dialect.name, ChatOwnerRow, ("user_id",))

    def start(
        self,
        user_id: str,
        title: str | None = None,
        *,
        conversation_id: str | None = None,
        thread: dict[str, Any] | None = None,
        created_at: dt.datetime | None = None,
        first: NewMessage | None = None,
    ) -> tuple[Conversation, Message | None]:
        """A new conversation, and its `first` message in the same transaction;
        ChatQuotaExceeded past a quota, and then nothing is written."""
        now = clock.utc_now()
        conversation = Conversation(
            id=conversation_id or str(uuid.uuid4()),
            title=_title(title),
            created_at=created_at or now,
            updated_at=now,
            thread=thread,
        )
        with self._engine.begin() as connection:
            self._take(connection, user_id, "conversation_count", 1)
            connection.execute(
                _INSERT_CONVERSATION,
                {
                    "id": conversation.id,
                    "user_id": user_id,
                    "title": conversation.title,
                    "created_at": conversation.created_at,
                    "updated_at": conversation.updated_at,
                    "thread": thread,
                },
            )
            message = None
            if first is not None:
                message = self._insert(
                    connection,
                    user_id,
                    conversation.id,
                    first.role,
                    first.content,
                    first.created_at or now,
                    tool_calls=first.tool_calls,
                    item=first.item,
                    message_id=first.message_id,
                )
        return conversation, message

    def get(self, user_id: str, conversation_id: str) -> Conversation:
        with self._engine.connect() as connection:
            row = connection.execute(
                _GET, {"owner": user_id, "conversation": conversation_id}
            ).one_or_none()
        if row is None:
            raise ConversationNotFound(conversation_id)
        return Conversation(*row)

    def update(
        self, user_id: str, conversation_id: str, title: str | None, thread: dict[str, Any] | None
    ) -> bool:
        """Set a conversation's title and thread JSON; False if the user has no such one."""
        statement = (
            update(_CONVERSATIONS)
            .where(*_MINE)
            .values(title=bindparam("title"), thread=bindparam("thread"))
        )
        with self._engine.begin() as connection:
            result = connection.execute(
                statement,
                {
                    "owner": user_id,
                    "conversation": conversation_id,
                    "title": _title(title),
                    "thread": thread,
                },
            )
        return bool(result.rowcount)

    def conversations(
        self, user_id: str, limit: int, cursor: str | None = None, *, newest_first: bool = True
    ) -> ConversationPage:
        created, key = _CONVERSATIONS.c.created_at, _CONVERSATIONS.c.id
        query = select(*_CONVERSATION_COLUMNS).where(_CONVERSATIONS.c.user_id == _OWNER)
        if cursor is not None:
            at, after = conversation_position(cursor)
            if newest_first:
                query = query.where(or_(created < at, (created == at) & (key < after)))
            else:
                query = query.where(or_(created > at, (created == at) & (key > after)))
        order = (created.desc(), key.desc()) if newest_first else (created.asc(), key.asc())
        query = query.order_by(*order).limit(limit + 1)
        with self._engine.connect() as connection:
            rows = connection.execute(query, {"owner": user_id}).all()
            total = connection.execute(_COUNT_CONVERSATIONS, {"owner": user_id}).scalar_one()
        found = [Conversation(*row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = conversation_cursor(found[-1].created_at, found[-1].id)
        return ConversationPage(found, total, next_cursor)

    def delete(self, user_id: str, conversation_id: str) -> None:
        """The conversation and every message in it, and their places in the quotas."""
        keys = {"owner": user_id, "conversation": conversation_id}
        with self._engine.begin() as connection:
            if not connection.execute(_DELETE_CONVERSATION, keys).rowcount:
                raise ConversationNotFound(conversation_id)
            removed = connection.execute(_DELETE_MESSAGES, keys).rowcount
            connection.execute(_SHRINK, {"owner": user_id, "conversations": 1, "messages": removed})

    def messages(
        self,
        user_id: str,
        conversation_id: str,
        limit: int,
        cursor: str | None = None,
        *,
        oldest_first: bool = True,
    ) -> MessagePage:
        """A page of the conversation's messages; ConversationNotFound if it is not the user's."""
        keys = {"owner": user_id, "conversation": conversation_id}
        seq = _MESSAGES.c.seq
        query = select(*_MESSAGE_COLUMNS).where(*_IN_IT)
        if cursor is not None:
            after = message_position(cursor)
            query = query.where(seq > after if oldest_first else seq < after)
        query = query.order_by(seq.asc() if oldest_first else seq.desc()).limit(limit + 1)
        with self._engine.connect() as connection:
            if connection.execute(_GET, keys).one_or_none() is None:
                raise ConversationNotFound(conversation_id)
            rows = connection.execute(query, keys).all()
            total = connection.execute(_COUNT_MESSAGES, keys).scalar_one()
        found = [Message(*row) for row in rows[:limit]]
        next_cursor = message_cursor(found[-1].seq) if len(rows) > limit else None
        return MessagePage(found, total, next_cursor)

    def history(self, user_id: str, conversation_id: str, limit: int) -> list[Message]:
        """The conversation's latest `limit` messages, oldest first."""
        page = self.messages(user_id, conversation_id, limit, oldest_first=False)
        return page.messages[::-1]

    def message(self, user_id: str, conversation_id: str, message_id: str) -> Message:
        query = select(*_MESSAGE_COLUMNS).where(*_IN_IT, _MESSAGES.c.id == bindparam("message"))
        keys = {"owner": user_id, "conversation": conversation_id, "message": message_id}
        with self._engine.connect() as connection:
            row = connection.execute(query, keys).one_or_none()
        if row is None:
            raise ConversationNotFound(message_id, "message")
        return Message(*row)

    def append(
        self,
        user_id: str,
        conversation_id: str,
        role: str,
        content: str,
        tool_calls: Sequence[dict[str, Any]] = (),
        *,
        item: dict[str, Any] | None = None,
        message_id: str | None = None,
        created_at: dt.datetime | None = None,
    ) -> Message:
        """Store a message at the conversation's end; ConversationNotFound if it is not the
        user's, ChatQuotaExceeded past the quota, and then nothing is written."""
        now = clock.utc_now()
        keys = {"owner": user_id, "conversation": conversation_id}
        with self._engine.begin() as connection:
            # Locks the conversation, so that a delete at the same time waits, or wins.
            if connection.execute(_LOCK_CONVERSATION, keys | {"now": now}).first() is None:
                raise ConversationNotFound(conversation_id)
            return self._insert(
                connection,
                user_id,
                conversation_id,
                role,
                content,
                created_at or now,
                tool_calls=tool_calls,
                item=item,
                message_id=message_id,
            )

    def _insert(
        self,
        connection: Connection,
        user_id: str,
        conversation_id: str,
        role: str,
        content: str,
        created_at: dt.datetime,
        *,
        tool_calls: Sequence[dict[str, Any]] = (),
        item: dict[str, Any] | None = None,
        message_id: str | None = None,
    ) -> Message:
        self._take(connection, user_id, "message_count", 1)
        message = Message(
            id=message_id or str(uuid.uuid4()),
            conversation_id=conversation_id,
            role=role,
            content=content,
            tool_calls=list(tool_calls),
            created_at=created_at,
            item=item,
        )
        seq = connection.execute(
            _INSERT_MESSAGE,
            {
                "id": message.id,
                "user_id": user_id,
                "conversation_id": conversation_id,
                "role": role,
                "content": content,
                "tool_calls": message.tool_calls,
                "item": item,
                "created_at": created_at,
            },
        ).scalar_one()
        return replace(message, seq=seq)

    def replace(
        self,
        user_id: str,
        conversation_id: str,
        message_id: str,
        content: str,
        item: dict[str, Any] | None,
    ) -> bool:
        """Rewrite a stored message's content and item (ChatKit updates an item it streamed);
        False if there is no such message of the user's."""
        statement = (
            update(_MESSAGES)
            .where(*_IN_IT, _MESSAGES.c.id == bindparam("message"))
            .values(content=bindparam("content"), item=bindparam("item"))
        )
        keys = {"owner": user_id, "conversation": conversation_id, "message": message_id}
        with self._engine.begin() as connection:
            result = connection.execute(statement, keys | {"content": content, "item": item})
        return bool(result.rowcount)

    def remove(self, user_id: str, conversation_id: str, message_id: str) -> None:
        statement = delete(_MESSAGES).where(*_IN_IT, _MESSAGES.c.id == bindparam("message"))
        keys = {"owner": user_id, "conversation": conversation_id, "message": message_id}
        with self._engine.begin() as connection:
            if connection.execute(statement, keys).rowcount:
                connection.execute(_SHRINK, {"owner": user_id, "conversations": 0, "messages": 1})

    def check_room(self, user_id: str, conversations: int, messages: int) -> None:
        """ChatQuotaExceeded if the user has no room for so many more: a check before a
        stream starts, so that its refusal is an answer of its own (each write holds the
        quotas again, under the lock)."""
        query = select(_OWNERS.c.conversation_count, _OWNERS.c.message_count).where(
            _OWNERS.c.user_id == _OWNER
        )
        with self._engine.connect() as connection:
            row = connection.execute(query, {"owner": user_id}).first()
        held = (0, 0) if row is None else tuple(row)
        for column, count, more in zip(self._quota, held, (conversations, messages), strict=True):
            if more and count + more > self._quota[column]:
                what = "conversations" if column == "conversation_count" else "messages"
                raise ChatQuotaExceeded(what, self._quota[column])

    def _take(self, connection: Connection, user_id: str, column: str, how_many: int) -> None:
        """A place in the owner's quota, taken under the owner row's lock."""
        connection.execute(self._add_owner, {"user_id": user_id})
        quota = self._quota[column]
        taken = connection.execute(
            _GROW[column], {"owner": user_id, "how_many": how_many, "quota": quota}
        ).first()
        if taken is None:
            what = "conversations" if column == "conversation_count" else "messages"
            raise ChatQuotaExceeded(what, quota)


def _title(title: str | None) -> str | None:
    """A title that fits its column: the first line, shortened."""
    if not title:
        return None
    line = title.strip().splitlines()[0] if title.strip() else ""
    return (line[:197] + "...") if len(line) > 200 else (line or None)
