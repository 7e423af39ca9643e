"""The chatbot's rules that need no database: a turn's tool-call cap, what the model reads
back, which model failures are 502 and which 503, the history sent, and the cursors."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

import httpx
import openai
import pytest

from storage.conversations import Message
from storage.cursors import (
    conversation_cursor,
    conversation_position,
    message_cursor,
    message_position,
)
from storage.errors import InvalidCursor
from todo_api.chat.agent import (
    LIMIT_REACHED,
    NOT_JSON,
    TurnContext,
    call_tool,
    history_input,
    model_error,
)
from todo_api.usecases.chat import ToolOutcome
from todo_api.usecases.errors import ModelFailed, ModelUnavailable


def turn(limit: int = 2) -> tuple[TurnContext, list[tuple[str, dict[str, Any]]]]:
    called: list[tuple[str, dict[str, Any]]] = []

    async def tools(name: str, arguments: Mapping[str, Any]) -> ToolOutcome:
        called.append((name, dict(arguments)))
        return ToolOutcome("ok", "Created: task 1.", {"id": 1})

    return TurnContext(tools, limit), called


def test_tool_calls_past_the_limit_are_refused_without_running() -> None:
    context, called = turn(limit=2)
    answers = [asyncio.run(call_tool(context, "add_task", '{"title": "a"}')) for _ in range(3)]
    assert len(called) == 2
    assert answers[2] == LIMIT_REACHED.format(limit=2)
    assert [call.outcome for call in context.calls] == ["ok", "ok", "refused"]


def test_the_model_reads_the_summary_and_the_json() -> None:
    context, _ = turn()
    assert asyncio.run(call_tool(context, "add_task", "{}")) == 'Created: task 1.\n{"id": 1}'


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]", '"text"'])
def test_arguments_that_are_not_an_object_are_refused(arguments: str) -> None:
    context, called = turn()
    assert asyncio.run(call_tool(context, "add_task", arguments)) == NOT_JSON
    assert called == []
    assert context.calls[0].arguments == {}


def test_streamed_tool_calls_are_announced_before_and_after() -> None:
    context, _ = turn()
    seen: list[tuple[str, dict[str, Any]]] = []

    async def events(kind: str, data: dict[str, Any]) -> None:
        seen.append((kind, data))

    context.events = events
    asyncio.run(call_tool(context, "add_task", '{"title": "a"}'))
    assert seen == [
        ("tool_call", {"name": "add_task", "arguments": {"title": "a"}}),
        ("tool_result", {"name": "add_task", "outcome": "ok", "summary": "Created: task 1."}),
    ]


# What a failing model's error may say: the request quoted back, a key in it.
ECHO = "echo of sk-not-for-the-client"
UNREACHABLE = openai.APIConnectionError(message=ECHO, request=httpx.Request("POST", "http://m"))


def _status_error(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://model/v1/chat/completions")
    return cls(ECHO, response=httpx.Response(status, request=request), body=None)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), ModelUnavailable),
        (
            openai.APIConnectionError(request=httpx.Request("POST", "http://model")),
            ModelUnavailable,
        ),
        (_status_error(openai.InternalServerError, 500), ModelUnavailable),
        (_status_error(openai.RateLimitError, 429), ModelUnavailable),
        (_status_error(openai.AuthenticationError, 401), ModelFailed),
        (_status_error(openai.BadRequestError, 400), ModelFailed),
        (ValueError(ECHO), ModelFailed),
        (AttributeError(ECHO), ModelFailed),
    ],
)
def test_model_failures_are_503_when_worth_a_retry_else_502(
    error: Exception, kind: type[ModelUnavailable]
) -> None:
    mapped = model_error(error, 30)
    assert type(mapped) is kind
    assert mapped.retry_after > 0
    assert ECHO not in mapped.detail


def test_the_history_keeps_text_messages_in_order() -> None:
    now = dt.datetime.now(dt.UTC)
    history = [
        Message("1", "c", "user", "hi", [], now),
        Message("2", "c", "assistant", "hello", [], now),
        Message("3", "c", "tool", "", [], now),
    ]
    assert history_input(history) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]


def test_cursors_read_back_and_refuse_each_others() -> None:
    at = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)
    assert conversation_position(conversation_cursor(at, "abc")) == (at, "abc")
    assert message_position(message_cursor(41)) == 41
    with pytest.raises(InvalidCursor):
        conversation_position(message_cursor(41))
    with pytest.raises(InvalidCursor):
        message_position(conversation_cursor(at, "abc"))
