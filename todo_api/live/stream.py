"""One event stream (text/event-stream): the user's changes feed, read from a cursor and then
again on every wake, written as Server-Sent Events.

Every change event comes from the feed, so a stream that resumes from an event's id gets
exactly the changes after it: nothing in between is lost and nothing is sent twice. Between
reads the stream holds no database connection and no admission place, only its registration.
A reminder comes with its task (todo_api/live/reminders.py): the stream reads nothing for it,
and has it confirmed once written.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Literal

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from storage import Changes, CursorExpired, Task
from storage.cursors import feed_position
from todo_api.live.wakeups import Delivery, Watch
from todo_api.metrics import Metrics
from todo_api.web.representation import change_json, task_json
from todo_api.web.server import ABORT_EXTENSION, OPEN_EXTENSION

logger = logging.getLogger("todo_api")

MEDIA_TYPE = "text/event-stream; charset=utf-8"
# How long a client waits before it reconnects, in milliseconds (the `retry:` field).
RETRY_MILLISECONDS = 2000

ReadFeed = Callable[[str | None], Awaitable[Changes]]
# Called with the reminders this stream wrote first: they are delivered.
Confirm = Callable[[list[Task]], Awaitable[None]]


def change_events(page: Changes) -> bytes:
    """Each change of a feed page as one `change` event, its id the cursor just after it."""
    return "".join(
        f"event: change\nid: {position}\ndata: {_compact(change_json(change))}\n\n"
        for change, position in zip(page.changes, page.positions, strict=True)
    ).encode()


def reminder_event(task: Task) -> bytes:
    """A reminder: no id, for it is no position in the feed, and resuming does not repeat it."""
    return f"event: reminder\ndata: {_compact(task_json(task))}\n\n".encode()


def reset_event(problem: bytes) -> bytes:
    """The feed's own answer to a cursor past retention, as a `reset` event."""
    return f"event: reset\ndata: {_compact(json.loads(problem))}\n\n".encode()


def _compact(value: Any) -> str:
    # One line: a data field ends at the first line break.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class EventStream(StreamingResponse):
    """An ASGI response that streams until the client leaves, the credential expires
    (`lifetime` seconds from now), or the client reads too slowly (one write not taken
    within `send_timeout` seconds: the client resumes from the last id it got).

    Starlette sends what `_events` yields, and stops it when the client leaves (uvicorn speaks
    ASGI 2.3, so StreamingResponse races the body against `http.disconnect`). Each write goes
    through `_write`: once a `yield` resumes, `_written` tells whether the client got it."""

    def __init__(
        self,
        *,
        watch: Watch,
        read: ReadFeed,
        confirm: Confirm,
        cursor: str | None,
        position: int,
        lifetime: float,
        heartbeat: float,
        send_timeout: float,
        reset: bytes,
        headers: dict[str, str],
        metrics: Metrics | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._body = self._events()
        super().__init__(self._body, headers=headers)
        self._watch = watch
        # Called once the stream is over (its lease across processes is given back).
        self._on_close = on_close
        self._read = read
        self._confirm = confirm
        self._cursor = cursor
        # The change number the cursor stands after: a wake for one no later is not news.
        self._seq = position
        self._lifetime = lifetime
        self._heartbeat = heartbeat
        self._send_timeout = send_timeout
        self._reset = reset
        self._metrics = metrics
        self._written = True
        self._dropped = False
        self._abort: Callable[[], None] | None = None
        self._open: Callable[[], bool] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # The server's way to drop a connection, where it has one (todo_api.web.server).
            extensions = scope.get("extensions", {})
            self._abort = extensions.get(ABORT_EXTENSION)
            self._open = extensions.get(OPEN_EXTENSION)
            await super().__call__(scope, receive, functools.partial(self._write, send))
        finally:
            # A client that left mid-write leaves the body at a `yield`: closed now, not
            # whenever it is collected.
            await self._body.aclose()
            self._watch.close()
            if self._on_close is not None:
                await self._on_close()

    async def _events(self) -> AsyncGenerator[bytes, None]:
        deadline = asyncio.get_running_loop().time() + self._lifetime
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        news = True
        while self._written:
            if news:
                # Every change after the cursor, a page at a time.
                self._watch.reading()
                more = True
                while more:
                    try:
                        page = await self._read(self._cursor)
                    except CursorExpired:
                        yield self._reset
                        self._count("reset", 1)
                        return
                    except (OperationalError, PoolTimeout) as exc:
                        # The answer has begun: no 503 can be sent. The stream ends, and the
                        # client reconnects after `retry` and resumes from its last id.
                        logger.warning(
                            "a stream could not read the feed; it was ended: %s",
                            exc,
                            extra={"event": "database_unavailable"},
                        )
                        return
                    if page.changes:
                        yield change_events(page)
                        if not self._written:
                            return
                        self._count("change", len(page.changes))
                    self._cursor = page.cursor
                    self._seq = feed_position(page.cursor)
                    more = page.has_more
            deliveries: list[Delivery] = self._watch.take_reminders()
            if deliveries:
                yield b"".join(reminder_event(delivery.task) for delivery in deliveries)
                if not self._written:
                    # None of them counts as written.
                    for delivery in deliveries:
                        delivery.drop()
                    return
                self._count("reminder", len(deliveries))
                first = [delivery.task for delivery in deliveries if delivery.wrote()]
                if first:
                    # Shielded: a client that leaves now must not undo a confirmation of what
                    # it got.
                    await asyncio.shield(self._confirm(first))
            while (waited := await self._wait(deadline)) == "heartbeat":
                # A comment: it keeps proxies from closing an idle connection.
                yield b": heartbeat\n\n"
                if not self._written:
                    return
            if waited == "end":
                return
            # Woken by reminders alone, the stream does not read the feed.
            news = self._watch.news_after(self._seq)

    async def _wait(self, deadline: float) -> Literal["news", "heartbeat", "end"]:
        """Wait for news, or for a heartbeat's interval while none comes."""
        loop = asyncio.get_running_loop()
        left = deadline - loop.time()
        if left <= 0:
            return "end"
        if await self._watch.wait(self._seq, min(self._heartbeat, left)):
            return "end" if self._watch.ended else "news"
        return "end" if loop.time() >= deadline else "heartbeat"

    def _count(self, event: str, how_many: int) -> None:
        if self._metrics is not None:
            self._metrics.stream_events.labels(event).inc(how_many)

    async def _write(self, send: Send, message: Message) -> None:
        """Send, holding each part of the body to the bound: a client that takes longer is
        dropped, and nothing more is written."""
        if message["type"] != "http.response.body":
            await send(message)
            return
        self._written = False
        if self._dropped:
            return
        try:
            async with asyncio.timeout(self._send_timeout):
                await send(message)
        except TimeoutError:
            self._dropped = True
            if self._metrics is not None:
                self._metrics.streams_dropped.inc()
            logger.info(
                "a stream's reader fell behind; it was closed", extra={"event": "stream_dropped"}
            )
            if self._abort is not None:
                self._abort()
            return
        # A server drops a write to a connection already closing without a word: what was
        # not written must not count as written (a reminder would be lost).
        self._written = self._open is None or self._open()
