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
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import Response
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


class EventStream(Response):
    """An ASGI response that streams until the client leaves, the credential expires
    (`lifetime` seconds from now), or the client reads too slowly (one write not taken
    within `send_timeout` seconds: the client resumes from the last id it got)."""

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
        # A Starlette response, so that Connexion passes it through as it is; its body is
        # streamed by __call__ alone.
        self.status_code = 200
        self.background = None
        self.raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self._dropped = False
        self._abort: Callable[[], None] | None = None
        self._open: Callable[[], bool] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # The server's way to drop a connection, where it has one (todo_api.web.server).
            self._abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
            self._open = scope.get("extensions", {}).get(OPEN_EXTENSION)
            streaming = asyncio.ensure_future(self._stream(send))
            leaving = asyncio.ensure_future(_disconnected(receive))
            done, _ = await asyncio.wait({streaming, leaving}, return_when=asyncio.FIRST_COMPLETED)
            for task in (streaming, leaving):
                task.cancel()
            await asyncio.gather(streaming, leaving, return_exceptions=True)
            if streaming in done and not streaming.cancelled():
                streaming.result()  # an error in the stream is raised here, and logged
        finally:
            self._watch.close()
            if self._on_close is not None:
                await self._on_close()

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        deadline = asyncio.get_running_loop().time() + self._lifetime
        if not await self._write(send, f"retry: {RETRY_MILLISECONDS}\n\n".encode()):
            return
        news = True
        while True:
            if news and not await self._catch_up(send):
                break
            if not await self._remind(send) or not await self._wait(send, deadline):
                break
            # Woken by reminders alone, the stream does not read the feed.
            news = self._watch.news_after(self._seq)
        if not self._dropped:
            await self._write(send, b"", more=False)

    async def _catch_up(self, send: Send) -> bool:
        """Send every change after the cursor; False if the stream must end."""
        self._watch.reading()
        while True:
            try:
                page = await self._read(self._cursor)
            except CursorExpired:
                await self._write(send, self._reset)
                self._count("reset", 1)
                return False
            except (OperationalError, PoolTimeout) as exc:
                # The answer has begun: no 503 can be sent. The stream ends, and the client
                # reconnects after `retry` and resumes from its last id.
                logger.warning(
                    "a stream could not read the feed; it was ended: %s",
                    exc,
                    extra={"event": "database_unavailable"},
                )
                return False
            if page.changes:
                if not await self._write(send, change_events(page)):
                    return False
                self._count("change", len(page.changes))
            self._cursor = page.cursor
            self._seq = feed_position(page.cursor)
            if not page.has_more:
                return True

    async def _remind(self, send: Send) -> bool:
        """Send every reminder that came, and have those it wrote first confirmed; False if
        the stream must end (then none of them counts as written)."""
        deliveries: list[Delivery] = self._watch.take_reminders()
        if not deliveries:
            return True
        body = b"".join(reminder_event(delivery.task) for delivery in deliveries)
        if not await self._write(send, body):
            for delivery in deliveries:
                delivery.drop()
            return False
        self._count("reminder", len(deliveries))
        first = [delivery.task for delivery in deliveries if delivery.wrote()]
        if first:
            # Shielded: a client that leaves now must not undo a confirmation of what it got.
            await asyncio.shield(self._confirm(first))
        return True

    async def _wait(self, send: Send, deadline: float) -> bool:
        """Wait for news, with a heartbeat while none comes; False if the stream must end."""
        loop = asyncio.get_running_loop()
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return False
            if await self._watch.wait(self._seq, min(self._heartbeat, left)):
                return not self._watch.ended
            if loop.time() >= deadline:
                return False
            # A comment: it keeps proxies from closing an idle connection.
            if not await self._write(send, b": heartbeat\n\n"):
                return False

    def _count(self, event: str, how_many: int) -> None:
        if self._metrics is not None:
            self._metrics.stream_events.labels(event).inc(how_many)

    async def _write(self, send: Send, data: bytes, *, more: bool = True) -> bool:
        """Write, unless the client takes longer than the bound: then give up (False)."""
        message: Message = {"type": "http.response.body", "body": data, "more_body": more}
        if self._dropped:
            return False
        try:
            async with asyncio.timeout(self._send_timeout):
                await send(message)
            # A server drops a write to a connection already closing without a word: what
            # was not written must not count as written (a reminder would be lost).
            return self._open is None or self._open()
        except TimeoutError:
            self._dropped = True
            if self._metrics is not None:
                self._metrics.streams_dropped.inc()
            logger.info(
                "a stream's reader fell behind; it was closed", extra={"event": "stream_dropped"}
            )
            if self._abort is not None:
                self._abort()
            return False


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
