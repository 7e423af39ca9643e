"""A scripted stand-in for OpenAI's Chat Completions API, served on loopback for the tests of
the chat endpoint: its agent talks to it through the real `openai` client, and nothing leaves
the machine.

The script reads only the request's messages (no state between requests), so any number of API
server processes may share one fake. The last user message's text picks the answer:

- `add <title>` / `remind me to <title>`: a tool call `add_task` `{"title": ...}`; after the
  tool's result, the text `Added "<title>". <the result's first line>`.
- `as <user> add <title>`: a tool call `add_task` `{"user_id": ..., "title": ...}`; after the
  result, a text quoting it.
- `list`: a tool call `list_tasks` `{}`; after the result, a text containing it.
- `loop`: always a tool call `list_tasks` (a model that never stops).
- `recall`: `You said: <every earlier user message, joined by " | ">`.
- `garbage`: HTTP 200 whose body is not JSON (or SSE lines that are not).
- `fail`: HTTP 500 with an OpenAI-style error.
- `slow`: `Finally.` after `FakeOpenAI.slow_seconds`.
- anything else: `You said: <text>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.network import in_a_thread

API_KEY = "fake-openai-key"
MODEL = "fake-model"

ADD = re.compile(r"(?:add|remind me to)\s+(?P<title>.+)", re.IGNORECASE | re.DOTALL)
ADD_AS = re.compile(r"as\s+(?P<user>\S+)\s+add\s+(?P<title>.+)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class ToolCall:
    """A function call the fake model asks for."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """What the script answers: a text, a tool call, a body that is not JSON, or a 500."""

    kind: Literal["text", "tool", "garbage", "fail"]
    text: str = ""
    tool: ToolCall | None = None
    slow: bool = False


def text_of(content: Any) -> str:
    """A message's text: `content` as a string, or its text parts (the two shapes OpenAI takes)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def script(messages: list[dict[str, Any]]) -> Reply:
    """The answer to `messages`, from them alone: the last user message's words and whether a
    tool result has come back since it."""
    users = [i for i, message in enumerate(messages) if message.get("role") == "user"]
    last = users[-1] if users else -1
    said = text_of(messages[last].get("content")).strip() if users else ""
    results = [
        text_of(message.get("content"))
        for message in messages[last + 1 :]
        if message.get("role") == "tool"
    ]
    result = results[-1] if results else None
    keyword = said.lower()
    if keyword == "loop":
        return Reply("tool", tool=ToolCall("list_tasks", {}))
    if keyword == "recall":
        earlier = [text_of(messages[i].get("content")).strip() for i in users[:-1]]
        return Reply("text", "You said: " + " | ".join(earlier))
    if keyword == "garbage":
        return Reply("garbage")
    if keyword == "fail":
        return Reply("fail")
    if keyword == "slow":
        return Reply("text", "Finally.", slow=True)
    if keyword == "list":
        if result is None:
            return Reply("tool", tool=ToolCall("list_tasks", {}))
        return Reply("text", f"Your tasks: {result}")
    if match := ADD_AS.fullmatch(said):
        if result is None:
            arguments = {"user_id": match["user"], "title": match["title"].strip()}
            return Reply("tool", tool=ToolCall("add_task", arguments))
        return Reply("text", f'The tool said: "{result}"')
    if match := ADD.fullmatch(said):
        title = match["title"].strip()
        if result is None:
            return Reply("tool", tool=ToolCall("add_task", {"title": title}))
        first_line = result.strip().splitlines()[0] if result.strip() else ""
        return Reply("text", f'Added "{title}". {first_line}'.rstrip())
    return Reply("text", f"You said: {said}")


class FakeOpenAI:
    """A running fake: where it listens, what it was sent, and options read on each request."""

    def __init__(
        self, *, delay: float = 0.0, slow_seconds: float = 5.0, model: str = MODEL
    ) -> None:
        self.base_url = ""
        self.delay = delay
        self.slow_seconds = slow_seconds
        self.model = model
        self._requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every JSON body sent to /v1/chat/completions, in order (a copy: the server's thread
        appends while a test reads)."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the requests, for a fake shared by several tests."""
        with self._lock:
            self._requests.clear()

    def record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(body)

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, cut short when the server stops: a sleeping request would otherwise
        hold up uvicorn's shutdown, or be cancelled with a traceback in the log."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.05))

    def app(self) -> Starlette:
        """The ASGI app: /v1/chat/completions and /v1/models."""
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.completions, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
            ]
        )

    async def models(self, request: Request) -> Response:
        if refused := unauthorized(request):
            return refused
        listed = {"id": self.model, "object": "model", "created": 0, "owned_by": "tests"}
        return JSONResponse({"object": "list", "data": [listed]})

    async def completions(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, "The body is not JSON.", "invalid_request_error")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return error(400, "'messages' is a required list of objects.", "invalid_request_error")
        self.record(body)
        if refused := unauthorized(request):
            return refused
        await self.pause(self.delay)
        reply = script(messages)
        if reply.slow:
            await self.pause(self.slow_seconds)
        stream = bool(body.get("stream"))
        if reply.kind == "fail":
            return error(500, "The fake model failed, as the script says.", "server_error")
        if reply.kind == "garbage":
            if stream:
                return StreamingResponse(garbage_lines(), media_type="text/event-stream")
            return Response("<html>oops", status_code=200, media_type="text/html")
        model = str(body.get("model") or self.model)
        usage = counted(messages, reply)
        if stream:
            options = body.get("stream_options") or {}
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            events = chunks(reply, model, usage if include_usage else None)
            return StreamingResponse(events, media_type="text/event-stream")
        return JSONResponse(completion(reply, model, usage))


def unauthorized(request: Request) -> Response | None:
    """The 401 OpenAI sends without a bearer key; any non-empty key is accepted."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return None
    return error(401, "You didn't provide an API key.", "invalid_request_error", "invalid_api_key")


def error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    """An error body in OpenAI's shape, which the `openai` client reads its message from."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def counted(messages: list[dict[str, Any]], reply: Reply) -> dict[str, int]:
    """Token counts of a sort (words), so that usage is present and plausible."""
    prompt = sum(len(text_of(message.get("content")).split()) for message in messages)
    answer = reply.text if reply.tool is None else json.dumps(reply.tool.arguments)
    completion_tokens = len(answer.split()) or 1
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def fresh_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def completion(reply: Reply, model: str, usage: dict[str, int]) -> dict[str, Any]:
    """A `chat.completion` object as OpenAI returns it."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    finish_reason = "stop"
    if reply.tool is not None:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": fresh_id("call_"),
                "type": "function",
                "function": {
                    "name": reply.tool.name,
                    "arguments": json.dumps(reply.tool.arguments),
                },
            }
        ]
        finish_reason = "tool_calls"
    return {
        "id": fresh_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": usage,
    }


def pieces(text: str, size: int) -> list[str]:
    """`text` in pieces of `size` characters, so that a client must join them."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


async def chunks(reply: Reply, model: str, usage: dict[str, int] | None) -> AsyncIterator[str]:
    """The SSE stream of `chat.completion.chunk`s OpenAI sends for `reply`."""
    ident, created = fresh_id("chatcmpl-"), int(time.time())

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        body: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }
        if usage is not None:
            body["usage"] = None
        return f"data: {json.dumps(body)}\n\n"

    if reply.tool is None:
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for word in re.findall(r"\S+\s*|\s+", reply.text):
            yield chunk({"content": word})
        yield chunk({}, "stop")
    else:
        yield chunk({"role": "assistant", "content": None, "refusal": None})
        call = {"id": fresh_id("call_"), "type": "function"}
        first = {"index": 0, **call, "function": {"name": reply.tool.name, "arguments": ""}}
        yield chunk({"tool_calls": [first]})
        for piece in pieces(json.dumps(reply.tool.arguments), 6):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls")
    if usage is not None:
        last = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        yield f"data: {json.dumps(last)}\n\n"
    yield "data: [DONE]\n\n"


async def garbage_lines() -> AsyncIterator[str]:
    """An event stream whose data lines are not JSON."""
    yield "data: <html>oops\n\n"
    yield "data: </html>\n\n"
    yield "data: [DONE]\n\n"


@contextlib.contextmanager
def serve_fake_openai(
    *, delay: float = 0.0, slow_seconds: float = 5.0, model: str = MODEL
) -> Iterator[FakeOpenAI]:
    """A fake served by uvicorn in a daemon thread on a free loopback port; stopped after,
    answering at once any request still sleeping (`delay`, `slow`)."""
    fake = FakeOpenAI(delay=delay, slow_seconds=slow_seconds, model=model)
    with in_a_thread(
        fake.app(), host="127.0.0.1", lifespan="off", timeout_graceful_shutdown=1
    ) as port:
        fake.base_url = f"http://127.0.0.1:{port}/v1"
        try:
            yield fake
        finally:
            # Requests still sleeping answer at once, so that the server stops at once.
            fake.stopping.set()
