"""The chatbot's part of the composition root (todo_api/app.py): the conversations, the model's
adapter when there is one, the tools of the MCP door, and chat's own rate limit."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from storage.conversations import ConversationStore
from todo_api.chat.service import ChatKitDoor, ChatService
from todo_api.chat_settings import ChatSettings
from todo_api.mcp.in_process import InProcessTools
from todo_api.metrics import Metrics
from todo_api.settings import Settings
from todo_api.usecases.chat import Chat, ToolSpec
from todo_api.web.chat_rate import ChatRate
from todo_api.web.ratelimit import Counter, Policy, RateLimiter

if TYPE_CHECKING:
    from todo_api.chat.agent import AgentAssistant

logger = logging.getLogger("todo_api")


def chat_service(
    settings: Settings,
    engine: Engine,
    counter: Counter,
    metrics: Metrics | None,
    tools: InProcessTools,
) -> ChatService:
    chat = settings.chat
    conversations = ConversationStore(
        engine, conversation_quota=chat.conversation_quota, message_quota=chat.message_quota
    )
    assistant = assistant_for(chat, tools.specs())
    policy = Policy("chat", chat.rate_limit_per_user, chat.rate_limit_window)
    limiter = RateLimiter(counter, user=policy, address=policy, metrics=metrics)
    return ChatService(
        Chat(conversations, assistant, chat.history_messages),
        tools,
        ChatRate(limiter, policy),
        closing=assistant.close if assistant is not None else None,
        drain_seconds=chat.timeout,
        chatkit=chatkit_for(assistant, conversations, chat.history_messages),
    )


def assistant_for(settings: ChatSettings, specs: list[ToolSpec]) -> AgentAssistant | None:
    """The model's adapter, when a key is set and the `chat` extra installed; else None, and
    the chat operations answer 503 (everything else works)."""
    if not settings.has_model:
        return None
    try:
        from todo_api.chat.agent import AgentAssistant
    except ImportError as exc:
        logger.warning(
            "OPENAI_API_KEY is set, but the chat extra is missing (%s): chat answers 503; "
            "install it with `pip install 'todo-api[chat]'`.",
            exc,
            extra={"event": "chat_unavailable"},
        )
        return None
    return AgentAssistant(settings, specs)


def chatkit_for(
    assistant: AgentAssistant | None, conversations: ConversationStore, history: int
) -> ChatKitDoor | None:
    """ChatKit's server over the same conversations and agent; None without a model, or
    without `openai-chatkit`, and then ChatKit's endpoint answers 503."""
    if assistant is None:
        return None
    try:
        from todo_api.chat.chatkit import TodoChatKitServer
        from todo_api.chat.chatkit_store import ConversationThreads
    except ImportError as exc:
        logger.warning(
            "The chat model is set up, but openai-chatkit is missing (%s): /chatkit answers "
            "503; install it with `pip install 'todo-api[chat]'`.",
            exc,
            extra={"event": "chatkit_unavailable"},
        )
        return None
    return TodoChatKitServer(ConversationThreads(conversations), assistant, history)
