"""ChatKit's store over the user's conversations: a thread is a conversation, an item is one
of its messages, so that ChatKit, POST /chat and GET /conversations read the same history.

An item keeps its whole JSON (`item`) and its plain text (`content`, what POST /chat's history
and GET /conversations/{id}/messages show); a message POST /chat stored reads back as a user
or assistant message item. Paging takes ChatKit's `after` as the id of the last item (or
thread) a client has, as ChatKit's own stores do.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, TypeVarTuple

import anyio
from anyio import to_thread
from chatkit.errors import CustomStreamError
from chatkit.store import Store, StoreItemType
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    Attachment,
    InferenceOptions,
    Page,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTagContent,
    UserMessageTextContent,
)
from pydantic import TypeAdapter

from storage.conversations import Conversation, ConversationStore, Message, NewMessage
from storage.cursors import conversation_cursor, message_cursor
from storage.errors import ChatQuotaExceeded, ConversationNotFound
from todo_api.usecases.chat import ToolCall, ToolCaller
from todo_api.usecases.errors import InvalidInput
from todo_api.web.problems import as_problem

# The most items or threads one page holds, whatever a client asks for.
MAX_PAGE = 100
NO_ATTACHMENTS = "this server takes no attachments: send the message as text"
# What of a thread the `thread` column keeps: the rest has columns of its own.
THREAD_FIELDS = {"status", "allowed_image_domains", "metadata"}

_ITEM: TypeAdapter[ThreadItem] = TypeAdapter(ThreadItem)
T = TypeVar("T")
Args = TypeVarTuple("Args")


@dataclass
class ChatKitContext:
    """Who a ChatKit request is for; its tools when it makes the model answer (the door
    admitted it), and the turn's tool calls, carried by the assistant message they led to."""

    user: str
    tools: ToolCaller | None = None
    calls: list[ToolCall] = field(default_factory=list)
    reported: int = 0
    # Set once the model is asked: a store's error then reaches the SDK's own handling, whose
    # event says only that "an error occurred".
    answering: bool = False
    # A threads.create's new thread, kept here until its first item: the two are stored in
    # one transaction, so that a quota refusing the item leaves no empty conversation.
    creating: bool = False
    pending: ThreadMetadata | None = None

    def unreported_calls(self) -> list[dict[str, Any]]:
        calls = self.calls[self.reported :]
        self.reported = len(self.calls)
        return [call.as_json() for call in calls]


class ConversationThreads(Store[ChatKitContext]):
    """ChatKit's Store on ConversationStore: every call as the context's user."""

    def __init__(self, conversations: ConversationStore) -> None:
        self.conversations = conversations

    def generate_thread_id(self, context: ChatKitContext) -> str:
        # Conversations' ids are UUIDs (their column and the contract's format say so).
        return str(uuid.uuid4())

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: ChatKitContext
    ) -> str:
        # Message ids are unique across users; ChatKit's own (8 hex digits) could meet.
        return str(uuid.uuid4())

    async def load_thread(self, thread_id: str, context: ChatKitContext) -> ThreadMetadata:
        if context.pending is not None and context.pending.id == thread_id:
            return context.pending
        conversation = await _run(self.conversations.get, context.user, thread_id)
        return thread_of(conversation)

    async def save_thread(self, thread: ThreadMetadata, context: ChatKitContext) -> None:
        await _run(self._save_thread, thread, context)

    def _save_thread(self, thread: ThreadMetadata, context: ChatKitContext) -> None:
        if context.pending is not None and context.pending.id == thread.id:
            context.pending = thread
            return
        kept = thread.model_dump(mode="json", include=THREAD_FIELDS)
        if self.conversations.update(context.user, thread.id, thread.title, kept):
            return
        if not context.creating:
            # Deleted meanwhile (DELETE /conversations/{id}): it stays deleted.
            raise ConversationNotFound(thread.id)
        context.creating, context.pending = False, thread

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: ChatKitContext
    ) -> Page[ThreadMetadata]:
        return await _run(self._threads, context.user, limit, after, order)

    def _threads(
        self, user: str, limit: int, after: str | None, order: str
    ) -> Page[ThreadMetadata]:
        cursor = None
        if after is not None:
            try:
                last = self.conversations.get(user, after)
            except ConversationNotFound:
                raise _not_listed("thread") from None
            cursor = conversation_cursor(last.created_at, last.id)
        page = self.conversations.conversations(
            user, _bounded(limit), cursor, newest_first=order != "asc"
        )
        threads = [thread_of(conversation) for conversation in page.conversations]
        return _page(threads, page.next_cursor is not None)

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: ChatKitContext
    ) -> Page[ThreadItem]:
        return await _run(self._items, context.user, thread_id, after, limit, order)

    def _items(
        self, user: str, thread_id: str, after: str | None, limit: int, order: str
    ) -> Page[ThreadItem]:
        cursor = None
        if after is not None:
            try:
                last = self.conversations.message(user, thread_id, after)
            except ConversationNotFound:
                self.conversations.get(user, thread_id)  # the thread's own 404 first
                raise _not_listed("item") from None
            cursor = message_cursor(last.seq)
        page = self.conversations.messages(
            user, thread_id, _bounded(limit), cursor, oldest_first=order == "asc"
        )
        items = [item_of(message) for message in page.messages]
        return _page(items, page.next_cursor is not None)

    async def history(
        self, thread_id: str, limit: int, context: ChatKitContext
    ) -> list[ThreadItem]:
        """The thread's latest `limit` items, oldest first: what the model is sent."""
        messages = await _run(self.conversations.history, context.user, thread_id, limit)
        return [item_of(message) for message in messages]

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: ChatKitContext
    ) -> None:
        await self._write(self._add, thread_id, item, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: ChatKitContext) -> None:
        await self._write(self._save, thread_id, item, context)

    def _add(self, thread_id: str, item: ThreadItem, context: ChatKitContext) -> None:
        role, text = role_and_text(item)
        calls = context.unreported_calls() if role == "assistant" else []
        moment = aware(item.created_at)
        message = NewMessage(role, text, calls, item_json(item, moment), item.id, moment)
        thread = context.pending
        if thread is not None and thread.id == thread_id:
            self.conversations.start(
                context.user,
                thread.title or text,
                conversation_id=thread.id,
                thread=thread.model_dump(mode="json", include=THREAD_FIELDS),
                created_at=aware(thread.created_at),
                first=message,
            )
            context.pending = None
            return
        self.conversations.append(
            context.user,
            thread_id,
            role,
            text,
            calls,
            item=message.item,
            message_id=item.id,
            created_at=moment,
        )

    def _save(self, thread_id: str, item: ThreadItem, context: ChatKitContext) -> None:
        _, text = role_and_text(item)
        data = item_json(item, aware(item.created_at))
        if not self.conversations.replace(context.user, thread_id, item.id, text, data):
            self._add(thread_id, item, context)

    async def _write(
        self,
        write: Callable[[str, ThreadItem, ChatKitContext], None],
        thread_id: str,
        item: ThreadItem,
        context: ChatKitContext,
    ) -> None:
        try:
            await _run(write, thread_id, item, context)
        except ChatQuotaExceeded as exc:
            if not context.answering:
                raise
            # Inside a turn the SDK answers any other error as "an error occurred": this one
            # the user can act on.
            raise CustomStreamError(as_problem(exc).detail) from None

    async def load_item(self, thread_id: str, item_id: str, context: ChatKitContext) -> ThreadItem:
        message = await _run(self.conversations.message, context.user, thread_id, item_id)
        return item_of(message)

    async def delete_thread(self, thread_id: str, context: ChatKitContext) -> None:
        await _run(self.conversations.delete, context.user, thread_id)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: ChatKitContext
    ) -> None:
        await _run(self.conversations.remove, context.user, thread_id, item_id)

    # Attachments are refused before a request reaches the SDK (chatkit.py); these say so
    # again should one ever get here.
    async def save_attachment(self, attachment: Attachment, context: ChatKitContext) -> None:
        raise no_attachments()

    async def load_attachment(self, attachment_id: str, context: ChatKitContext) -> Attachment:
        raise no_attachments()

    async def delete_attachment(self, attachment_id: str, context: ChatKitContext) -> None:
        raise no_attachments()


async def _run(call: Callable[[*Args], T], *args: *Args) -> T:
    """A store call in a worker thread, shielded: the SDK stores what a stream had when its
    client left, and a cancelled request must not cut that write off before it starts."""
    with anyio.CancelScope(shield=True):
        result = await to_thread.run_sync(call, *args)
    return result


def thread_of(conversation: Conversation) -> ThreadMetadata:
    stored = conversation.thread or {}
    kept = {key: value for key, value in stored.items() if key in THREAD_FIELDS}
    return ThreadMetadata.model_validate(
        {
            **kept,
            "id": conversation.id,
            "title": conversation.title,
            "created_at": conversation.created_at,
        }
    )


def item_of(message: Message) -> ThreadItem:
    """The ChatKit item a message is: its stored JSON, or, for POST /chat's, its text."""
    if message.item is not None:
        return _ITEM.validate_python(message.item)
    common: dict[str, Any] = {
        "id": message.id,
        "thread_id": message.conversation_id,
        "created_at": message.created_at,
    }
    if message.role == "user":
        return UserMessageItem(
            **common,
            content=[UserMessageTextContent(text=message.content)],
            inference_options=InferenceOptions(),
        )
    return AssistantMessageItem(**common, content=[AssistantMessageContent(text=message.content)])


def role_and_text(item: ThreadItem) -> tuple[str, str]:
    """A message's role and plain text. Other items (hidden context, widgets, workflows) are
    `tool` rows with no text: POST /chat's history leaves them out, and ChatKit has them
    whole in `item`."""
    if isinstance(item, UserMessageItem):
        parts = [
            f"@{part.text}" if isinstance(part, UserMessageTagContent) else part.text
            for part in item.content
        ]
        return "user", "".join(parts)
    if isinstance(item, AssistantMessageItem):
        return "assistant", "\n".join(part.text for part in item.content if part.text)
    return "tool", ""


def item_json(item: ThreadItem, moment: dt.datetime) -> dict[str, Any]:
    data: dict[str, Any] = _ITEM.dump_python(item, mode="json")
    data["created_at"] = moment.isoformat()
    return data


def aware(moment: dt.datetime) -> dt.datetime:
    """ChatKit stamps items with the local time, naive; the store keeps UTC."""
    return moment.astimezone(dt.UTC)


def _bounded(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))


def _page(data: list[T], has_more: bool) -> Page[T]:
    # Each page's `after` is its last id: what a client sends back for the next one.
    after = getattr(data[-1], "id", None) if data else None
    return Page(data=data, has_more=has_more, after=after)


def _not_listed(what: str) -> InvalidInput:
    detail = f"names no {what} of yours: send the `after` of the page you were given"
    return InvalidInput([{"pointer": "#/params/after", "detail": detail}])


def no_attachments() -> InvalidInput:
    return InvalidInput([{"pointer": "#/params/input/attachments", "detail": NO_ATTACHMENTS}])
