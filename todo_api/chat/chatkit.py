"""ChatKit's server (`POST /chatkit`, openai-chatkit's protocol) over the user's conversations,
answered by the agent of POST /chat: the same tools, tool-call cap, timeout and rate limit.

A request that makes the model answer (`threads.create`, `threads.add_user_message`,
`threads.retry_after_item`) is admitted by the chat service first, as a chat message is.
What needs what this server does not have (attachments, dictation, widgets' actions, client
tools, structured input) is refused with a 422 before the SDK sees it. A failure of the
model's ends the stream with ChatKit's error event, saying what POST /chat's problem says;
the user's message is stored before the model is asked, so it stays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, cast

from agents import RunResultStreaming, StreamEvent
from agents.exceptions import MaxTurnsExceeded
from agents.models.fake_id import FAKE_RESPONSES_ID
from anyio import to_thread
from chatkit.agents import AgentContext, ThreadItemConverter, stream_agent_response
from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer, NonStreamingResult
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    ErrorEvent,
    ProgressUpdateEvent,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsRetryAfterItemReq,
    ThreadStreamEvent,
    UserMessageItem,
    UserMessageTagContent,
)
from openai.types.responses import ResponseInputContentParam, ResponseInputTextParam
from starlette.responses import Response, StreamingResponse
from starlette.types import Scope

from storage.errors import ConversationNotFound
from todo_api.chat.agent import STOPPED, AgentAssistant, model_error
from todo_api.chat.chatkit_checks import checked
from todo_api.chat.chatkit_store import (
    ChatKitContext,
    ConversationThreads,
    role_and_text,
)
from todo_api.chat.service import Admit
from todo_api.chat.stream import MEDIA_TYPE, problem_of
from todo_api.usecases.chat import Events
from todo_api.usecases.errors import InvalidInput, ModelFailed

NOT_A_USER_MESSAGE = "names no user message of this thread"
NOT_ADMITTED = "This request cannot make the assistant answer."
# The requests that make the model answer: admitted (rate limit) before they start.
ANSWERING = (ThreadsCreateReq, ThreadsAddUserMessageReq, ThreadsRetryAfterItemReq)
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class TodoChatKitServer(ChatKitServer[ChatKitContext]):
    def __init__(self, threads: ConversationThreads, assistant: AgentAssistant, history: int):
        super().__init__(threads)
        self.threads = threads
        self.assistant = assistant
        # How many earlier items go to the model with each message (CHAT_HISTORY_MESSAGES).
        self.history = history
        self.converter = Converter()

    async def answer(self, scope: Scope, user: str, body: dict[str, Any], admit: Admit) -> Response:
        """One ChatKit request of `user`'s: JSON, or its events as Server-Sent Events."""
        raw = json.dumps(body, ensure_ascii=False).encode()
        request = checked(raw, body)
        context = ChatKitContext(user, creating=isinstance(request, ThreadsCreateReq))
        if isinstance(request, ANSWERING):
            # Checked before admission: a request that names another's thread costs nothing.
            await self._check_names(request, context)
            context.tools = await admit(scope, user)
        result = await self.process(raw, context)
        if isinstance(result, NonStreamingResult):
            return Response(result.json, media_type="application/json")
        return await streamed(result.json_events)

    async def _check_names(
        self,
        request: ThreadsCreateReq | ThreadsAddUserMessageReq | ThreadsRetryAfterItemReq,
        context: ChatKitContext,
    ) -> None:
        """A 404 for a thread that is not the user's, before any event: inside the stream the
        SDK could only cut the connection."""
        conversations = self.threads.conversations
        if isinstance(request, ThreadsCreateReq):
            await to_thread.run_sync(conversations.check_room, context.user, 1, 1)
            return
        if isinstance(request, ThreadsAddUserMessageReq):
            await to_thread.run_sync(conversations.check_room, context.user, 0, 1)
        thread_id = request.params.thread_id
        await self.store.load_thread(thread_id, context)
        if isinstance(request, ThreadsRetryAfterItemReq):
            try:
                item = await self.store.load_item(thread_id, request.params.item_id, context)
            except ConversationNotFound:
                item = None
            if not isinstance(item, UserMessageItem):
                error = {"pointer": "#/params/item_id", "detail": NOT_A_USER_MESSAGE}
                raise InvalidInput([error])

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: ChatKitContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        """The agent's answer to the thread's latest items, as ChatKit's events."""
        if context.tools is None:
            # answer() admits every request that gets here; this is its guard, not a path.
            raise CustomStreamError(NOT_ADMITTED)
        if thread.title is None and input_user_message is not None:
            # As POST /chat names a conversation: by its first message.
            thread.title = title_of(input_user_message)
        history = await self.threads.history(thread.id, self.history + 1, context)
        items = await self.converter.to_agent_input(history)
        agent_context = AgentContext(thread=thread, store=self.store, request_context=context)
        turn = self.assistant.context(context.tools, progress(agent_context))
        context.calls, context.answering = turn.calls, True
        run = CaughtRun(self.assistant.run_streamed(items, turn))
        events = stream_agent_response(agent_context, cast(RunResultStreaming, run))
        ids = ItemIds(lambda: self.store.generate_item_id("message", thread, context))
        timeout = self.assistant.settings.timeout
        timer = asyncio.get_running_loop().call_later(timeout, run.expire)
        try:
            async for event in events:
                yield ids.fixed(event)
        finally:
            timer.cancel()
            if not run.result.is_complete:
                # The client left: the SDK stores what it had, and the model stops.
                run.result.cancel()
        if isinstance(run.error, MaxTurnsExceeded):
            yield ThreadItemDoneEvent(item=stopped(ids.new(), thread.id, turn.limit))
        elif run.error is not None:
            error = model_error(run.error, timeout)
            allow_retry = not isinstance(error, ModelFailed)
            raise CustomStreamError(error.detail, allow_retry=allow_retry) from None


class CaughtRun:
    """The run as the SDK's stream_agent_response reads it, whose events end, rather than
    raise, when the model fails or the turn's time is up: raised inside the SDK's merge of
    events, a failure would leave the merge's other task waiting for ever. `error` is raised
    after, as ChatKit's error event."""

    def __init__(self, result: RunResultStreaming) -> None:
        self.result = result
        self.error: Exception | None = None

    def expire(self) -> None:
        """CHAT_TIMEOUT, as POST /chat's turn has: the run stops where it is."""
        if not self.result.is_complete:
            self.error = TimeoutError()
            self.result.cancel()

    async def stream_events(self) -> AsyncIterator[StreamEvent]:
        try:
            async for event in self.result.stream_events():
                yield event
        except Exception as exc:
            if self.error is None:
                self.error = exc


class Converter(ThreadItemConverter):
    """The SDK's conversion, with @-mentions as text (the SDK leaves them to each server)."""

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> ResponseInputContentParam:
        data = json.dumps(tag.data, ensure_ascii=False)
        return ResponseInputTextParam(type="input_text", text=f"@{tag.text}: {data}")


class ItemIds:
    """Chat Completions models give every message the Agents SDK's placeholder id; ChatKit
    would show each new message over the last, and the store keep one. Each gets its own."""

    def __init__(self, new: Callable[[], str]) -> None:
        self.new = new
        self.current: str | None = None

    def _id(self) -> str:
        if self.current is None:
            self.current = self.new()
        return self.current

    def fixed(self, event: ThreadStreamEvent) -> ThreadStreamEvent:
        if isinstance(event, ThreadItemAddedEvent | ThreadItemDoneEvent):
            if event.item.id == FAKE_RESPONSES_ID:
                event.item.id = self._id()
                if isinstance(event, ThreadItemDoneEvent):
                    self.current = None
        elif isinstance(event, ThreadItemUpdatedEvent) and event.item_id == FAKE_RESPONSES_ID:
            event.item_id = self._id()
        return event


def progress(agent_context: AgentContext[ChatKitContext]) -> Events:
    """The turn's tool calls as ChatKit's progress lines, while the model works."""

    async def events(kind: str, data: dict[str, Any]) -> None:
        if kind == "tool_call":
            await agent_context.stream(ProgressUpdateEvent(text=f"Using {data['name']}…"))

    return events


def stopped(item_id: str, thread_id: str, limit: int) -> AssistantMessageItem:
    """What POST /chat answers when a message reaches its tool-call cap, as an item."""
    return AssistantMessageItem(
        id=item_id,
        thread_id=thread_id,
        created_at=dt.datetime.now(dt.UTC),
        content=[AssistantMessageContent(text=STOPPED.format(limit=limit))],
    )


def title_of(message: UserMessageItem) -> str | None:
    """The first line of the message, at most 200 characters, as the store keeps a title."""
    lines = role_and_text(message)[1].strip().splitlines()
    line = lines[0] if lines else ""
    return (line[:197] + "...") if len(line) > 200 else (line or None)


async def streamed(events: AsyncGenerator[bytes, None]) -> StreamingResponse:
    """The SDK's events as Server-Sent Events. The first is awaited before the answer starts,
    so that a quota or a database that refuses the first write is an HTTP problem; one that
    fails later ends the stream with ChatKit's error event rather than a cut connection."""
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = b""

    async def body() -> AsyncIterator[bytes]:
        yield first
        try:
            async for chunk in events:
                yield chunk
        except Exception as exc:
            yield error_event(str(problem_of(exc)["detail"]))

    return StreamingResponse(body(), media_type=MEDIA_TYPE, headers=STREAM_HEADERS)


def error_event(message: str) -> bytes:
    event = ErrorEvent(code="custom", message=message, allow_retry=False)
    return b"data: " + event.model_dump_json(exclude_none=True).encode() + b"\n\n"
