"""The HTTP server's own bounds: uvicorn's httptools protocol, with what it lacks added.

uvicorn's httptools parser buffers a request head (and a chunked body's trailer section) of any
size and waits for it forever, appends trailer fields to the request's headers, and accepts
connections without bound. This protocol refuses a head over `max_head_bytes` with 431 without
reading the rest, and counts a trailer section toward the same bound while dropping its fields
(RFC 9110 section 6.5 lets a recipient discard them); closes a connection whose head is not
complete within `head_timeout` (408 when part of a head came); holds each client address to
`max_connections_per_address` and the process to `max_connections`, closing connections that
have sent nothing yet before it refuses anyone (503); and answers 501 to a transfer coding other
than chunked and 505 to an HTTP version other than 1.0 and 1.1. Idle keep-alive connections are
closed by uvicorn's own `timeout_keep_alive`.

An answer that never ends by itself (an event stream) would hold a graceful shutdown open until
its timeout, and the lifespan hears of the shutdown only once every connection has closed: so
the application leaves callables under ON_SERVER_SHUTDOWN in its lifespan state, and the server
calls them once, when it starts closing connections, to have such answers end.

This is the one module that reaches into uvicorn's internals; pyproject.toml pins uvicorn's
minor version, and tests/api/test_edge.py holds a live `todo-api serve` to each bound.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from todo_api.web.connections import ConnectionTable, address_key
from todo_api.web.problems import TITLES, problem_body

ABORT_EXTENSION = "todo_api.abort"
# Whether the connection still takes writes: uvicorn drops a write to one closing silently.
OPEN_EXTENSION = "todo_api.open"
# The lifespan state's key for a list of callables (no arguments) run when the server shuts down.
ON_SERVER_SHUTDOWN = "on_server_shutdown"
HTTP_VERSIONS = frozenset({"1.0", "1.1"})


@dataclass(frozen=True)
class EdgeLimits:
    max_head_bytes: int
    head_timeout: float
    max_connections: int
    max_connections_per_address: int
    # This process's connections: each worker process unpickles a table of its own.
    table: ConnectionTable[Any] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        table = ConnectionTable[Any](self.max_connections, self.max_connections_per_address)
        object.__setattr__(self, "table", table)


@functools.cache
def _trusted_proxies(forwarded_allow_ips: str) -> _TrustedHosts:
    return _TrustedHosts(forwarded_allow_ips)


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
        self._heard = False
        # The head's size, and the bytes since the body's last byte (chunk framing, and then
        # the trailer section): together they are held to `max_head_bytes`.
        self._head_size = 0
        self._body_bytes = 0
        self._framing_bytes = 0
        self._messages = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else ""
        forwarded_allow_ips = self.config.forwarded_allow_ips
        if not isinstance(forwarded_allow_ips, str):
            forwarded_allow_ips = ",".join(forwarded_allow_ips)
        capped = address not in _trusted_proxies(forwarded_allow_ips)
        closing = self.limits.table.admit(self, address_key(address), capped=capped)
        if closing is None:
            self._refuse(503, "The server has too many connections open; try again shortly.")
            return
        for silent in closing:
            silent.transport.close()  # nothing was asked: nothing to answer
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.limits.table.leave(self)
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._heard:
            self._heard = True
            self.limits.table.heard(self)
        # Fed in pieces no longer than the head's room (or, in a body, than a whole head), so
        # that a head which starts inside a piece has at most that piece uncounted: however
        # the bytes are split or pipelined, no head buffered here passes twice the limit.
        limit = self.limits.max_head_bytes
        while data:
            in_body = not self._in_head
            if in_body:
                piece, data = data[:limit], data[limit:]
                body_before, messages_before = self._body_bytes, self._messages
            else:
                room = limit - self._head_bytes
                if room <= 0:
                    self._refuse(431, f"The request head is over {limit} bytes.")
                    return
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing() or self._refused:
                return
            if in_body and self._messages == messages_before:
                # Only a piece without body bytes counts in full (what follows a body's last
                # byte in the same piece is at most one piece, as for a head).
                if self._body_bytes > body_before:
                    self._framing_bytes = 0
                else:
                    self._framing_bytes += len(piece)
                if self._head_size + self._framing_bytes > limit:
                    self._refuse(431, f"The request head and trailers are over {limit} bytes.")
                    return

    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        if self._head_timer is None:
            # A later request on a kept-alive connection: its head gets the same deadline.
            self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Past the head, a field is a trailer: counted (data_received), never a header.
        if self._in_head and not self._refused:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        refusal = self._unsupported()
        if refusal is not None:
            self._refuse(*refusal)
            return
        self._head_size = (
            len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) + 16
        )
        self._body_bytes = 0
        self._framing_bytes = 0
        self._in_head = False
        self._head_bytes = 0
        self._stop_head_timer()
        super().on_headers_complete()
        # ASGI has no way to give up on an answer half sent to a reader that takes nothing:
        # an event stream calls this to drop the connection (todo_api/live/stream.py).
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[ABORT_EXTENSION] = self._abort
        extensions[OPEN_EXTENSION] = self._open

    def _unsupported(self) -> tuple[int, str] | None:
        """What this server cannot read of a request whose head has come, if anything."""
        version = self.parser.get_http_version()
        if version not in HTTP_VERSIONS:
            return 505, f"HTTP/{version} is not supported; use HTTP/1.1."
        codings = [
            coding.strip().lower()
            for name, value in self.headers
            if name == b"transfer-encoding"
            for coding in value.decode("latin-1").split(",")
        ]
        if not codings:
            return None
        if codings[-1] != "chunked" or codings.count("chunked") > 1:
            # RFC 9112 section 6.3: the body's length cannot be read reliably.
            return 400, "Transfer-Encoding must end with chunked, applied once."
        if len(codings) > 1:
            return 501, "The only transfer coding supported is chunked."
        return None

    def send_400_response(self, msg: str) -> None:
        # What the parser cannot read (uvicorn answers it in plain text): problem+json too.
        self._refuse(400, "The request is not valid HTTP/1.1.")

    def _abort(self) -> None:
        self.transport.abort()

    def _open(self) -> bool:
        return not self.transport.is_closing()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._messages += 1
        super().on_message_complete()
        # Whatever comes next on this connection is the next request's head.
        self._in_head = True

    def shutdown(self) -> None:
        # uvicorn tells each connection in turn, and all share the lifespan state: the first
        # takes the hooks and runs them, so they run once, before any connection is closed.
        hooks: list[Callable[[], None]] = self.app_state.pop(ON_SERVER_SHUTDOWN, [])
        for hook in hooks:
            hook()
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
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if self._in_head:
                # A pipelined request is still being answered: an answer now would come
                # before its own. End the connection after that answer instead.
                cycle.keep_alive = False
                self.flow.pause_reading()
                return
            # The request whose body is arriving is the one refused: its application hears a
            # disconnect, and whatever it would answer goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
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
