"""The assistant: the OpenAI Agents SDK's agent on a Chat Completions model (any
OpenAI-compatible endpoint), with the user's tools, bounded in tool calls and in time.

Each failure of the model becomes one of the rules' errors: unreachable, slow or busy is
ModelUnavailable (503), an answer that is none or a refused key is ModelFailed (502). Neither
says more than that: an error's own text may quote the request, and the key never leaves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from agents import (
    Agent,
    FunctionTool,
    OpenAIChatCompletionsModel,
    RunConfig,
    Runner,
    RunResultStreaming,
    TResponseInputItem,
)
from agents.exceptions import MaxTurnsExceeded, ModelBehaviorError, ModelTimeoutError
from agents.tool_context import ToolContext
from openai.types.responses import EasyInputMessageParam

from storage.conversations import Message
from todo_api.chat_settings import ChatSettings
from todo_api.usecases.chat import (
    Events,
    Reply,
    ToolCall,
    ToolCaller,
    ToolOutcome,
    ToolSpec,
)
from todo_api.usecases.errors import ModelFailed, ModelUnavailable

logger = logging.getLogger("todo_api.chat")

# Seconds a client waits before it sends the message again, after the model failed.
RETRY_AFTER = 10
INSTRUCTIONS = """\
You are the assistant of a todo app. You manage the signed-in user's tasks and tags with the \
tools you have, and nothing else: you act for this user alone. Never send user_id. \
Use a tool to find out; never invent a task or its id. When the user asks for something, do \
it, then say in one or two sentences what you did. A tool that refuses says why: tell the \
user, or fix the arguments and try once more. Dates and times are ISO 8601 with a time zone \
(RFC 3339); the user's time zone is {timezone} unless they say otherwise. It is now {now}."""
STOPPED = (
    "I stopped without finishing: one message may make at most {limit} tool calls. The calls "
    "I made are listed with this answer. Ask again, perhaps in smaller steps."
)
LIMIT_REACHED = (
    "Refused: this message reached its limit of {limit} tool calls; nothing was done. Answer "
    "the user now, without tools."
)
NOT_JSON = "Refused: the arguments are not a JSON object; nothing was done."


@dataclass
class TurnContext:
    """What one turn's tool calls share: the user's tools, and what was called."""

    tools: ToolCaller
    limit: int
    events: Events | None = None
    calls: list[ToolCall] = field(default_factory=list)


class AgentAssistant:
    """The rules' Assistant (todo_api/usecases/chat.py) on the Agents SDK."""

    def __init__(self, settings: ChatSettings, tools: Sequence[ToolSpec]) -> None:
        self.settings = settings
        client = openai.AsyncOpenAI(
            api_key=settings.api_key,
            base_url=settings.base_url,
            # The turn's own bound holds; a retry inside it would only hide an outage.
            timeout=settings.timeout,
            max_retries=0,
        )
        self.client = client
        self.model = OpenAIChatCompletionsModel(model=settings.model, openai_client=client)
        self.tools = [_function_tool(spec) for spec in tools]
        # A model call per tool call, one to answer, and one more to say it must stop.
        self.max_turns = settings.max_tool_calls + 2

    async def close(self) -> None:
        await self.client.close()

    def agent(self, timezone: str = "UTC") -> Agent[TurnContext]:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        return Agent(
            name="Todo assistant",
            instructions=INSTRUCTIONS.format(timezone=timezone, now=now),
            model=self.model,
            # No `parallel_tool_calls`: not every OpenAI-compatible endpoint takes it (Gemini's
            # has refused it), and the cap holds for calls in parallel too (call_tool).
            tools=list(self.tools),
        )

    def context(self, tools: ToolCaller, events: Events | None = None) -> TurnContext:
        return TurnContext(tools, self.settings.max_tool_calls, events)

    async def reply(
        self,
        history: Sequence[Message],
        message: str,
        tools: ToolCaller,
        events: Events | None = None,
    ) -> Reply:
        context = self.context(tools, events)
        items = [*history_input(history), EasyInputMessageParam(role="user", content=message)]
        try:
            async with asyncio.timeout(self.settings.timeout):
                if events is None:
                    result = await Runner.run(
                        self.agent(),
                        items,
                        context=context,
                        max_turns=self.max_turns,
                        run_config=RUN_CONFIG,
                    )
                    text = str(result.final_output or "")
                else:
                    text = await self._streamed(items, context, events)
        except MaxTurnsExceeded:
            return Reply(STOPPED.format(limit=context.limit), context.calls)
        except Exception as exc:
            raise model_error(exc, self.settings.timeout) from None
        return Reply(text, context.calls)

    def run_streamed(
        self, items: list[TResponseInputItem], context: TurnContext
    ) -> RunResultStreaming:
        """A streamed run with this assistant's agent and bounds (ChatKit's respond)."""
        return Runner.run_streamed(
            self.agent(), items, context=context, max_turns=self.max_turns, run_config=RUN_CONFIG
        )

    async def _streamed(
        self, items: list[TResponseInputItem], context: TurnContext, events: Events
    ) -> str:
        result = self.run_streamed(items, context)
        async for event in result.stream_events():
            if event.type == "raw_response_event" and event.data.type == (
                "response.output_text.delta"
            ):
                await events("delta", {"text": event.data.delta})
        return str(result.final_output or "")


# Traces would go to OpenAI's platform: not where a user's todos belong.
RUN_CONFIG = RunConfig(tracing_disabled=True, workflow_name="todo chat")


def history_input(history: Sequence[Message]) -> list[TResponseInputItem]:
    """Earlier messages as the model's input: each with its role and text."""
    items: list[TResponseInputItem] = []
    for message in history:
        if not message.content:
            continue
        if message.role == "user":
            items.append(EasyInputMessageParam(role="user", content=message.content))
        else:
            items.append(EasyInputMessageParam(role="assistant", content=message.content))
    return items


def _function_tool(spec: ToolSpec) -> FunctionTool:
    async def invoke(context: ToolContext[TurnContext], arguments: str) -> str:
        return await call_tool(context.context, spec.name, arguments)

    return FunctionTool(
        name=spec.name,
        description=spec.description,
        params_json_schema=spec.parameters,
        on_invoke_tool=invoke,
        # The contract's schemas are not OpenAI's strict subset; the tool checks them itself.
        strict_json_schema=False,
    )


async def call_tool(turn: TurnContext, name: str, arguments: str) -> str:
    """One tool call of the model's, within the turn's limit; what the model reads back."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        parsed = None
    shown: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    if turn.events is not None:
        await turn.events("tool_call", {"name": name, "arguments": shown})
    if len(turn.calls) >= turn.limit:
        outcome = ToolOutcome("refused", LIMIT_REACHED.format(limit=turn.limit))
    elif not isinstance(parsed, dict):
        outcome = ToolOutcome("refused", NOT_JSON)
    else:
        outcome = await turn.tools(name, parsed)
    turn.calls.append(ToolCall(name, shown, outcome.outcome, outcome.summary))
    if turn.events is not None:
        summary = {"name": name, "outcome": outcome.outcome, "summary": outcome.summary}
        await turn.events("tool_result", summary)
    return outcome.text


def model_error(exc: BaseException, timeout: float) -> ModelUnavailable:
    """The rules' error for a failure of the model's, logged by kind only."""
    known = isinstance(exc, TimeoutError | openai.OpenAIError | ModelBehaviorError)
    logger.warning(
        "the chat model failed: %s",
        type(exc).__name__,
        # Only the unforeseen need their traceback (openai's errors never carry the key).
        exc_info=None if known else exc,
        extra={"event": "chat_model_failed"},
    )
    if isinstance(exc, TimeoutError | openai.APITimeoutError | ModelTimeoutError):
        return ModelUnavailable(
            f"The model did not answer within {timeout:g} seconds.", RETRY_AFTER
        )
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailable("The model could not be reached.", RETRY_AFTER)
    if isinstance(exc, openai.RateLimitError | openai.InternalServerError):
        status = exc.status_code
        return ModelUnavailable(f"The model is unavailable (it answered {status}).", RETRY_AFTER)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ModelFailed(
            "The model refused this server's key (OPENAI_API_KEY): the operator must fix it.",
            RETRY_AFTER,
        )
    if isinstance(exc, openai.APIStatusError):
        return ModelFailed(f"The model refused the request ({exc.status_code}).", RETRY_AFTER)
    if isinstance(exc, openai.APIResponseValidationError | ModelBehaviorError | ValueError):
        return ModelFailed("The model answered something that is no answer.", RETRY_AFTER)
    return ModelFailed("The model's answer could not be used.", RETRY_AFTER)
