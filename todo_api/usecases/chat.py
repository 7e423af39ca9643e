"""The chatbot's rules: a turn of a conversation, and the conversations themselves.

A turn loads the conversation's latest messages, stores the user's message, asks the assistant
(the model, with the user's tools) and stores its reply. The user's message is stored before
the model is asked, so a turn the model fails loses nothing; the reply is stored whole or not
at all. The assistant and the tools are ports: the composition root hands in the model's
adapter (todo_api/chat/agent.py) and the MCP door's tools, bound to the user by the door.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from anyio import to_thread

from storage.conversations import (
    Conversation,
    ConversationPage,
    ConversationStore,
    Message,
    MessagePage,
    NewMessage,
)
from todo_api.usecases.errors import ChatUnavailable

NO_MODEL = (
    "The chatbot is not set up on this server: it needs the `chat` extra "
    "(`pip install 'todo-api[chat]'`) and OPENAI_API_KEY."
)


@dataclass(frozen=True)
class ToolSpec:
    """A tool as a model is told of it."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """A tool call the agent made, as the answer and the stored reply list it."""

    name: str
    arguments: dict[str, Any]
    outcome: str
    summary: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool answered: how it went, its line for the model, and its JSON."""

    outcome: str
    summary: str
    content: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """What the model reads: the line, then the JSON (the task, or the problem)."""
        if self.content is None:
            return self.summary
        return f"{self.summary}\n{json.dumps(self.content, ensure_ascii=False)}"


# The user's tools, bound to the user by the door: a name and the model's arguments in.
ToolCaller = Callable[[str, Mapping[str, Any]], Awaitable[ToolOutcome]]
# Where a streamed turn's events go as they happen: ("delta", {"text": ...}), ...
Events = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Reply:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)


class Assistant(Protocol):
    async def reply(
        self,
        history: Sequence[Message],
        message: str,
        tools: ToolCaller,
        events: Events | None = None,
    ) -> Reply: ...


@dataclass(frozen=True)
class Turn:
    conversation_id: str
    response: str
    tool_calls: list[ToolCall]

    def as_json(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "response": self.response,
            "tool_calls": [call.as_json() for call in self.tool_calls],
        }


@dataclass(frozen=True)
class Pending:
    """A turn whose message is stored, waiting for the model."""

    user: str
    conversation_id: str
    message: str
    history: list[Message]


class Chat:
    """The chatbot as the composition root sets it up: the conversations, the assistant (None
    when no model is configured) and how many earlier messages a turn sends."""

    def __init__(
        self, conversations: ConversationStore, assistant: Assistant | None, history: int
    ) -> None:
        self.conversations = conversations
        self.assistant = assistant
        self.history = history

    def ready(self) -> Assistant:
        if self.assistant is None:
            raise ChatUnavailable(NO_MODEL)
        return self.assistant

    async def turn(
        self,
        user: str,
        conversation_id: str | None,
        message: str,
        tools: ToolCaller,
        events: Events | None = None,
    ) -> Turn:
        return await self.finish(await self.begin(user, conversation_id, message), tools, events)

    async def check(self, user: str, conversation_id: str | None) -> None:
        """What a message would be refused for, found before it is counted or stored: the
        conversation is not the user's (404), or a quota is full (409)."""
        self.ready()
        await to_thread.run_sync(self._check, user, conversation_id)

    def _check(self, user: str, conversation_id: str | None) -> None:
        if conversation_id is not None:
            self.conversations.get(user, conversation_id)
        self.conversations.check_room(user, 0 if conversation_id else 1, 1)

    async def begin(self, user: str, conversation_id: str | None, message: str) -> Pending:
        """The turn's first half: the conversation found (or begun) and the message stored.
        Everything a client got wrong is raised here, before any answer starts."""
        self.ready()
        conversation, history = await to_thread.run_sync(
            self._begin, user, conversation_id, message
        )
        return Pending(user, conversation, message, history)

    async def finish(
        self, pending: Pending, tools: ToolCaller, events: Events | None = None
    ) -> Turn:
        """The model's reply, stored whole, or an error and nothing stored."""
        reply = await self.ready().reply(pending.history, pending.message, tools, events)
        calls = [call.as_json() for call in reply.tool_calls]
        user, conversation = pending.user, pending.conversation_id
        await to_thread.run_sync(
            lambda: self.conversations.append(user, conversation, "assistant", reply.text, calls)
        )
        return Turn(conversation, reply.text, reply.tool_calls)

    def _begin(
        self, user: str, conversation_id: str | None, message: str
    ) -> tuple[str, list[Message]]:
        """The conversation the turn goes on (a new one, with the message, when none is
        named), the history before the message, and the message stored."""
        if conversation_id is None:
            first = NewMessage("user", message)
            conversation, _ = self.conversations.start(user, message, first=first)
            return conversation.id, []
        history = self.conversations.history(user, conversation_id, self.history)
        self.conversations.append(user, conversation_id, "user", message)
        return conversation_id, history

    def conversations_page(self, user: str, limit: int, cursor: str | None) -> ConversationPage:
        return self.conversations.conversations(user, limit, cursor)

    def messages_page(
        self, user: str, conversation_id: str, limit: int, cursor: str | None
    ) -> MessagePage:
        return self.conversations.messages(user, conversation_id, limit, cursor)

    def delete(self, user: str, conversation_id: str) -> None:
        self.conversations.delete(user, conversation_id)

    def conversation(self, user: str, conversation_id: str) -> Conversation:
        return self.conversations.get(user, conversation_id)
