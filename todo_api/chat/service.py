"""The chatbot as every door reaches it: the rules' `Chat`, the tools bound to the user, the
chat rate limit, and ChatKit's server over the same conversations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import Scope

from todo_api.chat.stream import drain
from todo_api.usecases.chat import Chat, ToolCaller
from todo_api.usecases.errors import ChatUnavailable
from todo_api.web.chat_rate import ChatRate

# Where the app's lifespan leaves it (`request.state`).
STATE_KEY = "chat"
NO_CHATKIT = (
    "ChatKit's server is not installed here: it needs the `chat` extra "
    "(`pip install 'todo-api[chat]'`), which brings `openai-chatkit`."
)

# A chat message admitted for a user: their tools, or the refusal (503, 429).
Admit = Callable[[Scope, str], Awaitable[ToolCaller]]


class ToolBinder(Protocol):
    def bound(self, scope: Scope, user: str) -> ToolCaller: ...


class ChatKitDoor(Protocol):
    """ChatKit's server (todo_api/chat/chatkit.py), which needs the `chat` extra."""

    async def answer(
        self, scope: Scope, user: str, body: dict[str, Any], admit: Admit
    ) -> Response: ...


@dataclass
class ChatService:
    chat: Chat
    tools: ToolBinder
    rate: ChatRate | None = None
    # What ends with the app: the model's client.
    closing: Callable[[], Awaitable[None]] | None = None
    # How long the app's end waits for streamed turns to finish (CHAT_TIMEOUT bounds each).
    drain_seconds: float = 0
    # todo_api/chat/chatkit.py's server, when there is a model and the chat extra.
    chatkit: ChatKitDoor | None = None

    async def chatkit_answer(self, scope: Scope, user: str, body: dict[str, Any]) -> Response:
        """ChatKit's request, answered by its server for `user`; each request that makes the
        model answer is admitted as a chat message is (`admit`)."""
        if self.chatkit is None:
            # Without a model ChatKit has nothing to offer: 503, as POST /chat answers.
            self.chat.ready()
            raise ChatUnavailable(NO_CHATKIT)
        return await self.chatkit.answer(scope, user, body, self.admit)

    async def close(self) -> None:
        await drain(self.drain_seconds)
        if self.closing is not None:
            await self.closing()

    async def admit(self, scope: Scope, user: str) -> ToolCaller:
        """One chat message of the user's, admitted: the chatbot is set up (503 otherwise),
        and the user is within the chat rate limit (429); the user's tools for it. A door
        checks first what it can refuse for free (`Chat.check`), so that no refusal costs a
        place in the limit."""
        self.chat.ready()
        if self.rate is not None:
            await self.rate.count(user)
        return self.tools.bound(scope, user)


def chat_service(scope: Scope) -> ChatService:
    service: ChatService = scope["state"][STATE_KEY]  # set by todo_api.app at startup
    return service
