"""ASGI middleware that runs before Connexion routes a request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_api.metrics import Metrics
from todo_api.web.problems import (
    ContentTooLarge,
    RequestTimeout,
    asgi_response,
    retry_after_header,
)


class TrailingSlash:
    """Serve `/api/tasks/` as `/api/tasks`, in place: a redirect would make a browser drop
    `Authorization` on a cross-origin request. The API's `root` itself (`/api`) is served as
    `/api/`, the path its mount routes, for the same reason."""

    def __init__(self, app: ASGIApp, root: str) -> None:
        self.app = app
        self.root = root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            raw_path: bytes | None = scope.get("raw_path")
            if path == self.root:
                scope = dict(scope)
                scope["path"] = path + "/"
                if raw_path:
                    scope["raw_path"] = raw_path + b"/"
            # Only below the API root: `/api/` itself must stay, as its mount routes it.
            elif path.endswith("/") and path.strip("/").count("/") >= 1:
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                if raw_path:
                    scope["raw_path"] = raw_path.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


class CORS(CORSMiddleware):
    """Starlette's CORS, refusing a preflight with problem+json rather than plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        headers = {
            k: v for k, v in response.headers.items() if k not in {"content-type", "content-length"}
        }
        return asgi_response(response.status_code, bytes(response.body).decode(), headers)


class BodyLimit:
    """Refuse a request body over `max_bytes` with 413, however it is framed, and one that
    arrives too slowly with 408.

    The body is read here, up to the limit, and handed on with its true Content-Length: a
    declared length over the limit is refused before reading, a chunked body is counted as it
    arrives, and Connexion (which takes a request without Content-Length for one without a
    body) sees chunked bodies as the ordinary bodies they are. This runs before admission, so
    a slow sender holds its own connection and nothing that other users need; it may fall
    silent for `idle_timeout` seconds at a time, and must be done within `timeout`.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, idle_timeout: float, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_timeout = idle_timeout
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise ContentTooLarge(self.max_bytes)
        body = bytearray()
        more = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while more:
            try:
                async with asyncio.timeout_at(min(loop.time() + self.idle_timeout, deadline)):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout("The request body did not arrive in time.") from None
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                raise ContentTooLarge(self.max_bytes)
            more = message.get("more_body", False)
        scope = {**scope, "headers": list(scope["headers"])}
        headers = MutableHeaders(scope=scope)
        headers["content-length"] = str(len(body))
        if "transfer-encoding" in headers:
            del headers["transfer-encoding"]
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


class SecurityHeaders:
    """`nosniff` on every answer; `no-store` on every answer to a request with credentials; a
    redirect's `Location` relative, since Starlette builds it from the client's `Host`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authenticated = "authorization" in Headers(scope=scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if authenticated:
                    headers["Cache-Control"] = "no-store"
                if 300 <= message["status"] < 400 and "location" in headers:
                    target = urlsplit(headers["location"])
                    # One leading slash: `//host/...` (or `/\\host`, to a browser) would name
                    # another host again.
                    path = "/" + target.path.lstrip("/\\")
                    headers["location"] = urlunsplit(("", "", path, target.query, ""))
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Admission:
    """At most `slots` requests at work at once (one place per pooled database connection); the
    rest wait up to `wait` seconds for a place, then get 503 with Retry-After.

    Without it, requests past the thread pool's size queue for a thread with no bound at all,
    and those past the connection pool's size hold a thread while they wait for a connection.
    Probes are never held back: a busy process is alive, and readiness asks the database at
    most once a second (todo_api/web/readiness.py). Nor are event streams, which last:
    they take a place for each read they make instead (todo_api/live).
    """

    def __init__(
        self,
        app: ASGIApp,
        slots: asyncio.Semaphore,
        wait: float,
        exempt: Callable[[str, str], bool],
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.slots = slots
        self.wait = wait
        self.exempt = exempt
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        if not self.slots.locked():
            # A free place is taken at once: no timer, and no task for wait_for to run.
            await self.slots.acquire()
        else:
            if self.metrics is not None:
                self.metrics.admission_waits.inc()
            try:
                await asyncio.wait_for(self.slots.acquire(), self.wait)
            except TimeoutError:
                if self.metrics is not None:
                    self.metrics.admission_refusals.inc()
                busy = "The server is busy; try again shortly."
                await asgi_response(503, busy, retry_after_header(self.wait))(scope, receive, send)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()
