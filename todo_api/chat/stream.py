"""A chat turn as Server-Sent Events: the reply's text as it is written (`delta`), each tool
call and its answer (`tool_call`, `tool_result`), then `done` with the whole answer, or `error`
with a problem. The turn runs in a task of its own: a client that goes away does not cut it
short, so the reply is stored as if it had stayed (each turn is bounded by CHAT_TIMEOUT)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

from todo_api.usecases.chat import Chat, Pending, ToolCaller
from todo_api.web.problem_values import problem_for, problem_value

MEDIA_TYPE = "text/event-stream; charset=utf-8"
# Turns still running after their client left: held, so that none is collected half-way.
_RUNNING: set[asyncio.Task[None]] = set()


def event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def streamed_turn(chat: Chat, pending: Pending, tools: ToolCaller) -> StreamingResponse:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def events(kind: str, data: dict[str, Any]) -> None:
        queue.put_nowait(event(kind, data))

    async def run() -> None:
        try:
            turn = await chat.finish(pending, tools, events)
            queue.put_nowait(event("done", turn.as_json()))
        except Exception as exc:
            queue.put_nowait(event("error", problem_of(exc)))
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(run())
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)

    async def body() -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type=MEDIA_TYPE, headers=headers)


def problem_of(exc: Exception) -> dict[str, Any]:
    """The problem an HTTP answer would have been, as an event's data."""
    return problem_value(problem_for(exc))


async def drain(seconds: float) -> None:
    """Wait, at most `seconds`, for the turns whose clients left to store their replies."""
    if _RUNNING:
        await asyncio.wait(set(_RUNNING), timeout=seconds)
