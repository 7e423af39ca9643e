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

from todo_api.logs import current_request_id
from todo_api.usecases.chat import Chat, Pending, ToolCaller
from todo_api.web.problems import (
    DATABASE_ERRORS,
    DOMAIN_ERRORS,
    TITLES,
    UNEXPECTED,
    as_problem,
    database_unavailable,
    log_unexpected,
)

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
    if isinstance(exc, DOMAIN_ERRORS):
        problem = as_problem(exc)  # type: ignore[arg-type]  # narrowed by DOMAIN_ERRORS
    elif isinstance(exc, DATABASE_ERRORS):
        problem = database_unavailable(exc, None)
    else:
        log_unexpected(exc)
        return _body(500, TITLES[500], UNEXPECTED, None)
    retry_after = (problem.headers or {}).get("Retry-After")
    return _body(problem.status, problem.title, problem.detail, retry_after)


def _body(status: int, title: str, detail: str, retry_after: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if retry_after is not None:
        body["retry_after"] = int(retry_after)
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    return body
