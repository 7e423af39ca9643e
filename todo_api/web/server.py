"""The HTTP server's own bounds: uvicorn's httptools protocol, with what it lacks added.

uvicorn's httptools parser buffers a request head of any size and waits for it forever, and
accepts connections without bound. This protocol refuses a head over `max_head_bytes` with 431
without reading the rest, closes a connection whose head is not complete within `head_timeout`
(408 when part of a head came), and answers a connection past `max_connections` with 503 at
once. Idle keep-alive connections are closed by uvicorn's own `timeout_keep_alive`.

This is the one module that reaches into uvicorn's internals; pyproject.toml pins uvicorn's
minor version, and tests/api/test_edge.py holds a live `todo-api serve` to each bound.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from todo_api.web.problems import TITLES, problem_body

ABORT_EXTENSION = "todo_api.abort"
# Whether the connection still takes writes: uvicorn drops a write to one closing silently.
OPEN_EXTENSION = "todo_api.open"


@dataclass(frozen=True)
class EdgeLimits:
    max_head_bytes: int
    head_timeout: float
    max_connections: int


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: EdgeLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        # Whether the bytes arriving now belong to a request head, and how many have so far.
        self._in_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "The server has too many connections open; try again shortly.")
            return
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Fed in pieces no longer than the head's room (or, in a body, than a whole head), so
        # that a head which starts inside a piece has at most that piece uncounted: however
        # the bytes are split or pipelined, no head buffered here passes twice the limit.
        limit = self.limits.max_head_bytes
        while data:
            if self._in_head:
                room = limit - self._head_bytes
                if room <= 0:
                    self._refuse(431, f"The request head is over {limit} bytes.")
                    return
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
            else:
                piece, data = data[:limit], data[limit:]
            super().data_received(piece)
            if self.transport.is_closing() or self._refused:
                return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            # A later request on a kept-alive connection: its head gets the same deadline.
            self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._stop_head_timer()
        super().on_headers_complete()
        # ASGI has no way to give up on an answer half sent to a reader that takes nothing:
        # an event stream calls this to drop the connection (todo_api/live/stream.py).
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[ABORT_EXTENSION] = self._abort
        extensions[OPEN_EXTENSION] = self._open

    def _abort(self) -> None:
        self.transport.abort()

    def _open(self) -> bool:
        return not self.transport.is_closing()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # Whatever comes next on this connection is the next request's head.
        self._in_head = True

    def shutdown(self) -> None:
        # Event streams never end by themselves: told to end, each completes its answer, and
        # the connection closes as any other would (instead of holding the shutdown open).
        live = self.app_state.get("live")
        if live is not None:
            live.wakeups.end_all()
        super().shutdown()

    def on_response_complete(self) -> None:
        if not self._in_head:
            # Answered before its body was all in (a 413, or a handler that never read it):
            # the rest of the body would keep the connection, and nothing would time it out.
            self.transport.close()
            return
        super().on_response_complete()

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0 and self.cycle is None:
            self.transport.close()  # nothing was asked: nothing to answer
        else:
            self._refuse(408, "The request head did not arrive in time.")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer problem+json and close, reading nothing more."""
        self._stop_head_timer()
        self._refused = True
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request is still being answered: an answer now would come before
            # its own. End the connection after that answer instead.
            self.cycle.keep_alive = False
            self.flow.pause_reading()
            return
        body, media_type = problem_body(status, detail)
        retry = b"retry-after: 1\r\n" if status == 503 else b""
        self.transport.write(
            b"HTTP/1.1 %d %s\r\n" % (status, TITLES[status].encode())
            + b"content-type: %s\r\n" % media_type.encode()
            + b"content-length: %d\r\n" % len(body)
            + retry
            + b"connection: close\r\n\r\n"
            + body
        )
        self.transport.close()
