"""A Server-Sent Events client for the tests: reads a live stream in a thread of its own."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Event:
    event: str = "message"
    id: str | None = None
    data: str = ""
    # time.perf_counter() when the event's last line was read.
    received: float = 0.0

    def json(self) -> Any:
        return json.loads(self.data)


class EventReader:
    """GET `url` as an event stream; events arrive in `next()`. Each field line is parsed as
    the HTML standard says, comments and `retry` included, so tests see what was sent.

    Plain HTTP/1.1 over a socket of its own: `close()` shuts the socket down, which ends a
    read blocked in another thread at once, as a browser closing a tab does."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        receive_buffer: int | None = None,
        paused: bool = False,
    ) -> None:
        """With `receive_buffer`, the socket's receive buffer is that small; `paused`, the body
        is not read until `resume()`: together, a reader that falls behind."""
        self._events: queue.Queue[Event | BaseException | None] = queue.Queue()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""
        self.retry: int | None = None
        self.comments: list[str] = []
        self.ended = threading.Event()
        # Why the stream ended other than by the answer's end, if it did.
        self.broken: BaseException | None = None
        parts = urlsplit(url)
        self._sock = socket.socket()
        if receive_buffer is not None:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self._sock.settimeout(10)
        self._sock.connect((parts.hostname, parts.port or 80))
        self._go = threading.Event()
        if not paused:
            self._go.set()
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Accept: text/event-stream"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._file = self._sock.makefile("rb")
        self._read_head()
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read_head(self) -> None:
        status_line = self._file.readline().decode()
        self.status = int(status_line.split()[1])
        while (line := self._file.readline().decode().strip()) != "":
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def _chunks(self) -> Iterator[bytes]:
        if self.headers.get("transfer-encoding") != "chunked":
            yield self._file.read(int(self.headers.get("content-length", "0")))
            return
        while True:
            size = int(self._file.readline().split(b";")[0], 16)
            if size == 0:
                return
            yield self._file.read(size)
            self._file.readline()

    def _lines(self) -> Iterator[str]:
        pending = b""
        for chunk in self._chunks():
            if self.status != 200:
                self.body += chunk
                continue
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode()

    def resume(self) -> None:
        self._go.set()

    def _read(self) -> None:
        self._go.wait()
        try:
            event = Event()
            for line in self._lines():
                if line == "":
                    if event.data or event.event != "message":
                        event.received = time.perf_counter()
                        self._events.put(event)
                    event = Event()
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    self.comments.append(value)
                elif name == "retry":
                    self.retry = int(value)
                elif name == "event":
                    event.event = value
                elif name == "id":
                    event.id = value
                elif name == "data":
                    event.data = f"{event.data}\n{value}" if event.data else value
        except (OSError, ValueError) as exc:
            self.broken = exc
            self._events.put(exc)
        finally:
            self.ended.set()
            self._events.put(None)

    def json_body(self) -> Any:
        self.ended.wait(5)
        return json.loads(self.body)

    def next(self, timeout: float = 5.0) -> Event:
        item = self._events.get(timeout=timeout)
        if item is None:
            self._events.put(None)
            raise EOFError("the stream ended")
        if isinstance(item, BaseException):
            self._events.put(item)
            raise EOFError(f"the stream broke: {item}")
        return item

    def take(self, count: int, timeout: float = 5.0) -> list[Event]:
        return [self.next(timeout) for _ in range(count)]

    def nothing_more(self, wait: float = 1.0) -> bool:
        """Whether no event comes within `wait` seconds (the stream may end meanwhile)."""
        try:
            self.next(wait)
        except (queue.Empty, EOFError):
            return True
        return False

    def close(self) -> None:
        self._go.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._file.close()
        self._sock.close()

    def __enter__(self) -> EventReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
