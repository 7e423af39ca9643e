"""The outermost middleware: each request's id, its metrics and its one access line, and
`/api/metrics` itself, outside authentication, rate limits and admission."""

from __future__ import annotations

import hmac
import time
import uuid
from functools import lru_cache

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_api.contract import base_path, is_request_id, route_template
from todo_api.logs import CURRENT_REQUEST, RequestContext, log_request
from todo_api.metrics import MEDIA_TYPE, Metrics
from todo_api.web.problems import TITLES, asgi_response

REQUEST_ID_HEADER = "X-Request-ID"
METRICS_REALM = 'Bearer realm="todo-api metrics"'
# No answer at all: the client went away first (nginx's 499).
CLIENT_CLOSED = 499
# Any other method is counted as OTHER: a label value per made-up method would grow without end.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def metrics_path() -> str:
    return f"{base_path()}/metrics"


def mcp_path() -> str:
    """Where MCP is served (todo_api/mcp), beside the spec's operations."""
    return f"{base_path()}/mcp"


# RFC 9728 section 3.1: the well-known path prefix of a resource's metadata.
PROTECTED_RESOURCE_METADATA = "/.well-known/oauth-protected-resource"


def mcp_metadata_path() -> str:
    """Its protected-resource metadata: RFC 9728 section 3.1's well-known URI of the resource."""
    return f"{PROTECTED_RESOURCE_METADATA}{mcp_path()}"


@lru_cache(maxsize=4096)
def route_label(path: str) -> str:
    """The spec's path template for a request path; the served documents and Swagger UI by
    their own paths; anything else, whatever its path, as `unmatched`."""
    template = route_template(path)
    if template is not None:
        return template
    base = base_path()
    path = path.rstrip("/")
    if path in {
        f"{base}/openapi.json",
        f"{base}/openapi.yaml",
        metrics_path(),
        mcp_path(),
        mcp_metadata_path(),
    }:
        return path
    if path == f"{base}/docs" or path.startswith(f"{base}/docs/"):
        return f"{base}/docs"
    return "unmatched"


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics | None, metrics_token: str | None) -> None:
        self.app = app
        self.metrics = metrics
        self.metrics_token = metrics_token
        self.metrics_path = metrics_path()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.metrics is not None and scope["path"].rstrip("/") == self.metrics_path:
            await self._scrape(scope, self.metrics)(scope, receive, send)
            return
        started = time.perf_counter()
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER)
        context = RequestContext(
            offered if offered is not None and is_request_id(offered) else uuid.uuid4().hex
        )
        token = CURRENT_REQUEST.set(context)
        status = 0
        size = 0
        metrics = self.metrics

        async def send_observed(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = context.request_id
                if metrics is not None:
                    if status == 412:
                        metrics.precondition_failures.inc()
                    elif headers.get("idempotent-replayed") == "true":
                        metrics.idempotent_replays.inc()
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        if metrics is not None:
            metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_observed)
        except BaseException:
            # Escaping here, it becomes the server's own 500 on its way out.
            status = status or 500
            raise
        finally:
            status = status or CLIENT_CLOSED
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            route = route_label(scope["path"])
            if metrics is not None:
                metrics.in_flight.dec()
                metrics.count_request(method, route, status, seconds)
            _log_access(scope, context, method, route, status, seconds, size)
            CURRENT_REQUEST.reset(token)

    def _scrape(self, scope: Scope, metrics: Metrics) -> Response:
        if scope["method"] not in {"GET", "HEAD"}:
            return asgi_response(405, "Metrics are read with GET.", {"Allow": "GET, HEAD"})
        if self.metrics_token is not None:
            sent = Headers(scope=scope).get("authorization", "")
            scheme, _, credential = sent.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                credential.strip().encode(), self.metrics_token.encode()
            ):
                detail = "Metrics need the METRICS_TOKEN as a bearer token."
                return asgi_response(401, detail, {"WWW-Authenticate": METRICS_REALM})
        return Response(metrics.exposition(), 200, media_type=MEDIA_TYPE)


_TITLES = TITLES | {CLIENT_CLOSED: "Client Closed Request"}


def _log_access(
    scope: Scope,
    context: RequestContext,
    method: str,
    route: str,
    status: int,
    seconds: float,
    size: int,
) -> None:
    client = scope.get("client")
    log_request(
        {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "bytes": size,
            "user": context.user,
            "client": client[0] if client else None,
            "request_id": context.request_id,
            "error": (context.error or _TITLES.get(status, "Error")) if status >= 400 else None,
        }
    )
