"""The one composition root: `create_app(settings)` builds the engine, the clients and the
middleware around the spec, and `app_from_env` is what an ASGI server calls in each worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx2
from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from storage import TaskStore, build_engine, upgrade
from storage.tickets import TicketStore
from todo_api.auth.authenticator import Authenticator, Expected
from todo_api.auth.jwks import JwksCache
from todo_api.auth.sessions import SessionIntrospector
from todo_api.chat.service import STATE_KEY as CHAT
from todo_api.compose_chat import chat_service
from todo_api.contract import (
    SPEC_DIR,
    base_path,
    independent_spec,
    is_streamed,
    probe_paths,
    spec,
)
from todo_api.live.leases import StreamLeases
from todo_api.live.streams import LiveUpdates
from todo_api.live.wakeups import Wakeups
from todo_api.mcp import server as mcp
from todo_api.mcp.in_process import InProcessTools
from todo_api.mcp.tools import tools
from todo_api.metrics import Metrics
from todo_api.secret_strength import weak_secret
from todo_api.settings import ConfigError, Settings
from todo_api.web import connexion_hooks, problems, stack
from todo_api.web.heap import FrozenAfterStartup
from todo_api.web.json_bodies import OrjsonJsonifier
from todo_api.web.media_types import RequestContent
from todo_api.web.middleware import CORS, Admission, BodyLimit, SecurityHeaders, TrailingSlash
from todo_api.web.observe import REQUEST_ID_HEADER, Observe, mcp_metadata_path, mcp_path
from todo_api.web.ratelimit import (
    Counter,
    MemoryCounter,
    Policy,
    RateLimiter,
    RateLimits,
    RedisCounter,
)
from todo_api.web.readiness import Readiness
from todo_api.web.served_contract import (
    DOCS_PATH,
    JSON_PATH,
    ServedContract,
    api_index,
    contract_documents,
)
from todo_api.web.server import ON_SERVER_SHUTDOWN

# What a browser's script may read of an answer, and send, across origins.
EXPOSED_HEADERS = [
    "X-Total-Count",
    "Link",
    "Location",
    "ETag",
    "Idempotent-Replayed",
    REQUEST_ID_HEADER,
    # An MCP client in a browser finds the resource metadata in the 401's challenge.
    "WWW-Authenticate",
]
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    REQUEST_ID_HEADER,
    # W3C trace context, from a browser's OpenTelemetry instrumentation
    "traceparent",
    "tracestate",
    # What an MCP client sends with each request after the first (/api/mcp), and, from the
    # 2026-07-28 revision on, with every request
    "Mcp-Protocol-Version",
    "Mcp-Method",
    "Mcp-Name",
]


NO_CREDENTIALS = (
    "No way to check a token is configured: set BETTER_AUTH_SECRET (HS256 tokens) and/or "
    "BETTER_AUTH_URL (Better Auth's JWKS, and sessions with BETTER_AUTH_SESSIONS=1)."
)


def create_app(settings: Settings) -> AsyncApp:
    if not settings.accepts_credentials:
        raise ConfigError(NO_CREDENTIALS)
    engine = build_engine(settings.database_url, settings.pool)
    metrics = Metrics() if settings.metrics_enabled else None
    if metrics is not None:
        metrics.watch_pool(engine)
    counter = _counter(settings)
    limiter = _rate_limiter(settings, counter, metrics)
    # One place per pooled connection: requests hold one while they work, streams per read.
    slots = asyncio.Semaphore(settings.pool.size + settings.pool.max_overflow)
    # Read from the installed distribution's metadata once, at start, not by the first request.
    version = api_index()["version"]
    definitions = tools(spec())
    mcp_server = mcp.mcp_server(definitions, version) if settings.mcp_enabled else None
    chat = chat_service(settings, engine, counter, metrics, InProcessTools(definitions))

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        if settings.auto_migrate:
            await run_in_threadpool(upgrade, engine)
        wakeups = Wakeups(settings.streams_per_user, settings.streams_per_process, metrics)
        store = task_store(settings, engine, wakeups)
        tickets = TicketStore(engine, dt.timedelta(seconds=settings.stream_ticket_seconds))
        live = LiveUpdates(
            settings, store, tickets, wakeups, slots, metrics, _stream_leases(settings)
        )
        live.start()
        timeout = httpx2.Timeout(settings.auth_http_timeout)
        async with (
            httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as client,
            AsyncExitStack() as doors,
        ):
            state: dict[str, Any] = {}
            if mcp_server is not None:
                # A manager runs once: each start of the app has one of its own.
                manager = mcp.session_manager(mcp_server, settings.max_body_bytes)
                await doors.enter_async_context(manager.run())
                state[mcp.MANAGER] = manager
            try:
                # Starlette hands this state to every request as `request.state`.
                yield state | {
                    "store": store,
                    "readiness": Readiness(store.ping),
                    "tickets": tickets,
                    "live": live,
                    # Streams never end by themselves: told to, each completes its answer.
                    ON_SERVER_SHUTDOWN: [live.wakeups.end_all],
                    "authenticator": _authenticator(settings, client, metrics),
                    "rate_limiter": limiter,
                    "metrics": metrics,
                    CHAT: chat,
                }
            finally:
                # First: a chat turn whose client left still stores its reply.
                await chat.close()
                live.stop()
                await live.close()
                engine.dispose()
                await counter.close()

    # After the body is read and the credential checked (Better Auth may be slow): a place is
    # held only by a request ready to work, and for as long as it works.
    admission = functools.partial(
        Admission,
        slots=slots,
        wait=settings.pool.timeout,
        exempt=lambda method, path: is_probe(method, path) or is_streamed(path),
        metrics=metrics,
    )
    app = AsyncApp(
        __name__,
        specification_dir=SPEC_DIR,
        lifespan=lifespan,
        middlewares=stack.middlewares(after_security=admission),
        validate_responses=settings.validate_responses,
        jsonifier=OrjsonJsonifier(),
        # Connexion's copy of the spec has every $ref inlined: ServedContract serves the file's
        # own, and Swagger UI reads it from there.
        swagger_ui_options=SwaggerUIOptions(
            swagger_ui_path=DOCS_PATH, serve_spec=False, spec_path=JSON_PATH
        ),
    )
    connexion_hooks.read_security_signatures_once()
    if mcp_server is not None:
        # Routed before the API's mount, which would take every path below /api; inside every
        # middleware below, as each operation is.
        resource = settings.better_auth_mcp_resource
        app.add_url_rule(mcp_path(), "mcp", mcp.McpDoor(resource))
        issuer = settings.oauth_issuer if settings.better_auth_url else None
        metadata = mcp.ResourceMetadata(issuer, resource)
        app.add_url_rule(mcp_metadata_path(), "mcp_metadata", metadata)
    app.add_api(independent_spec(), resolver=connexion_hooks.SharedHandlers())
    if settings.otel_endpoint:
        # Imported only here: without the `otel` extra, nothing of OpenTelemetry but its API
        # (which the MCP SDK imports) is loaded.
        try:
            from todo_api.web.tracing import trace_requests
        except ImportError as exc:
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_ENDPOINT is set, but OpenTelemetry is missing ({exc}); "
                "install it with `pip install 'todo-api[otel]'`."
            ) from None
        trace_requests(app, engine)
    # Outermost but for tracing: the request id, the metrics and the one access line cover
    # every answer, the refusals below included.
    app.add_middleware(
        Observe,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        metrics=metrics,
        metrics_token=settings.metrics_token,
    )
    app.add_middleware(
        ServedContract, position=MiddlewarePosition.BEFORE_SWAGGER, documents=contract_documents()
    )
    app.add_middleware(TrailingSlash, position=MiddlewarePosition.BEFORE_ROUTING, root=base_path())
    # Before the body is read: a coded body is refused unread.
    app.add_middleware(RequestContent, position=MiddlewarePosition.BEFORE_ROUTING)
    app.add_middleware(
        BodyLimit,
        position=MiddlewarePosition.BEFORE_ROUTING,
        max_bytes=settings.max_body_bytes,
        idle_timeout=settings.body_idle_timeout,
        timeout=settings.body_timeout,
    )
    # Outside the error handling, so that error answers carry these headers too (the first
    # added is the outermost).
    app.add_middleware(SecurityHeaders, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(
        CORS,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        # `*` is any origin without credentials: a literal `*`, never a reflected origin.
        allow_origins=["*"] if settings.any_origin else list(settings.cors_origins),
        allow_credentials=not settings.any_origin,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
    if limiter is not None:
        # Inside CORS (preflights are not counted), outside the error handling (so that a
        # refused request never reaches it, and every answer carries the headers).
        app.add_middleware(
            RateLimits,
            position=MiddlewarePosition.BEFORE_EXCEPTION,
            limiter=limiter,
            exempt=is_probe,
        )
    problems.register(app)
    return app


def is_probe(method: str, path: str) -> bool:
    """A load balancer's check: never rate-limited, never waiting for a place to work (the
    readiness check asks the database at most once a second, todo_api/web/readiness.py)."""
    return method in {"GET", "HEAD"} and path.rstrip("/") in probe_paths()


def task_store(settings: Settings, engine: Engine, wakeups: Wakeups | None = None) -> TaskStore:
    return TaskStore(
        engine,
        quota=settings.task_quota,
        retention=settings.tombstone_retention,
        idempotency_ttl=settings.idempotency_key_lifetime,
        on_change=wakeups.wake if wakeups is not None else None,
    )


def _counter(settings: Settings) -> Counter:
    """Where the rate limits count: Redis, shared by every process, or this process."""
    if not settings.redis_url:
        return MemoryCounter()
    return RedisCounter(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout,
    )


def _rate_limiter(
    settings: Settings, counter: Counter, metrics: Metrics | None
) -> RateLimiter | None:
    if not settings.rate_limit_enabled:
        return None
    window = settings.rate_limit_window
    return RateLimiter(
        counter,
        user=Policy("user", settings.rate_limit_per_user, window),
        address=Policy("address", settings.rate_limit_per_address, window),
        metrics=metrics,
    )


def _stream_leases(settings: Settings) -> StreamLeases | None:
    """With several processes sharing Redis, STREAMS_PER_USER holds across them."""
    if not settings.redis_url:
        return None
    return StreamLeases(
        settings.redis_url,
        per_user=settings.streams_per_user,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout,
    )


def _authenticator(
    settings: Settings, client: httpx2.AsyncClient, metrics: Metrics | None
) -> Authenticator:
    jwks_url, session_url = settings.jwks_endpoint, settings.session_endpoint
    return Authenticator(
        secret=settings.auth_secret,
        secret_claims=expected_claims(settings),
        jwks=(
            JwksCache(
                jwks_url,
                client,
                refetch_cooldown=settings.jwks_refetch_cooldown,
                timeout=settings.auth_http_timeout,
                metrics=metrics,
            )
            if jwks_url
            else None
        ),
        # Better Auth's jwt() plugin sets both claims to its base URL unless told otherwise.
        jwks_claims=Expected(
            settings.jwt_issuer or settings.better_auth_url,
            settings.jwt_audience or settings.better_auth_url,
        ),
        mcp_claims=(
            Expected(settings.oauth_issuer, settings.better_auth_mcp_resource)
            if settings.better_auth_mcp_resource
            else None
        ),
        sessions=(
            SessionIntrospector(
                session_url,
                client,
                ttl=settings.session_cache_ttl,
                timeout=settings.auth_http_timeout,
            )
            if session_url
            else None
        ),
        metrics=metrics,
    )


def expected_claims(settings: Settings) -> Expected:
    return Expected(settings.jwt_issuer, settings.jwt_audience)


def app_from_env() -> ASGIApp:
    """The factory uvicorn (or another ASGI server) calls in each worker process."""
    settings = Settings.from_env()
    refuse_a_guessable_secret(settings)
    return FrozenAfterStartup(create_app(settings))


def refuse_a_guessable_secret(settings: Settings) -> None:
    """Every secret the server holds; `todo-api token` asks only of the one it signs with."""
    refuse_a_guessable_signing_secret(settings)
    _refuse_guessable("METRICS_TOKEN", settings.metrics_token, "read the metrics")


def refuse_a_guessable_signing_secret(settings: Settings) -> None:
    _refuse_guessable("BETTER_AUTH_SECRET", settings.auth_secret, "sign tokens with it")


def _refuse_guessable(name: str, value: str | None, harm: str) -> None:
    weakness = weak_secret(value) if value else None
    if weakness is not None:
        raise ConfigError(
            f"{name} {weakness}, so anyone could {harm}; "
            "set it to a random value, e.g. the output of `openssl rand -base64 32`."
        )
