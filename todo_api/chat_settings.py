"""The chatbot's settings (`/api/chat`, `/api/chatkit`): which model, and the bounds of a turn.
Nested in `Settings` as `chat`; each is declared once here, as the other settings are."""

from __future__ import annotations

from dataclasses import dataclass

from todo_api.variables import amount, base_url, check_fields, count, setting, text

# An agent that needs more tool calls than this for one message is looping, not working.
MAX_TOOL_CALLS = 50
# A turn the model cannot finish in ten minutes is no conversation.
MAX_TURN_SECONDS = 600


@dataclass(frozen=True)
class ChatSettings:
    api_key: str | None = setting(
        "OPENAI_API_KEY",
        text,
        None,
        "Key of the OpenAI-compatible model endpoint; without it, chat answers 503",
        secret=True,
    )
    base_url: str | None = setting(
        "OPENAI_BASE_URL",
        base_url,
        None,
        "Chat Completions endpoint if not OpenAI's (Gemini's, Ollama's, vLLM's)",
    )
    model: str = setting("CHAT_MODEL", text, "gpt-4o-mini", "The model the agent runs on")
    max_tool_calls: int = setting(
        "CHAT_MAX_TOOL_CALLS",
        count,
        8,
        "Tool calls one chat message may make; past it the agent stops",
        most=MAX_TOOL_CALLS,
    )
    history_messages: int = setting(
        "CHAT_HISTORY_MESSAGES", count, 20, "Earlier messages sent to the model with each"
    )
    timeout: float = setting(
        "CHAT_TIMEOUT",
        amount,
        60.0,
        "Seconds one chat turn may take; then 503",
        most=MAX_TURN_SECONDS,
        unit="seconds",
    )
    rate_limit_per_user: int = setting(
        "CHAT_RATE_LIMIT_PER_USER",
        count,
        20,
        "Chat messages per user per CHAT_RATE_LIMIT_WINDOW (each costs money)",
    )
    rate_limit_window: int = setting(
        "CHAT_RATE_LIMIT_WINDOW", count, 60, "Seconds of the chat rate limit's window"
    )
    conversation_quota: int = setting(
        "CHAT_CONVERSATION_QUOTA", count, 200, "Most conversations one user may keep (409)"
    )
    message_quota: int = setting(
        "CHAT_MESSAGE_QUOTA", count, 10_000, "Most chat messages one user may keep (409)"
    )

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def has_model(self) -> bool:
        return bool(self.api_key)
