"""The app factory and the `todo-api` command line."""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import functools
import logging
import logging.config
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from dotenv import load_dotenv
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from starlette.concurrency import run_in_threadpool

from handlers import operations, problems
from handlers.auth import Authenticator, Expected, mint_token
from handlers.contract import SPEC_DIR, independent_spec, is_user_id
from handlers.jwks import JwksCache
from handlers.middleware import CORS, Admission, BodyLimit, SecurityHeaders, TrailingSlash
from handlers.ratelimit import MemoryCounter, Policy, RateLimiter, RateLimits, RedisCounter
from handlers.redaction import RedactCredentials
from handlers.served_contract import JSON_PATH, ServedContract, contract_documents
from handlers.server import EdgeLimits, GuardedHttpToolsProtocol
from handlers.sessions import SessionIntrospector
from handlers.settings import ConfigError, Settings, weak_secret
from handlers.validation import VALIDATORS
from storage import TaskStore, build_engine, upgrade

logger = logging.getLogger("todo_api")

DEMO_USER = "demo-user"
# Every log line, uvicorn's and the application's alike: `INFO:     uvicorn.error: Started ...`.
LOG_FORMAT = "%(levelprefix)s %(name)s: %(message)s"
# The longest a minted token may live: `todo-api token` is for trying the API and for scripts.
MAX_TOKEN_TTL = 365 * 86_400
LIVENESS_PATH = "/api/health"
GRACEFUL_SHUTDOWN_SECONDS = 30
# What a browser's script may read of an answer, and send, across origins.
EXPOSED_HEADERS = ["X-Total-Count", "Link", "Location", "ETag", "Idempotent-Replayed"]
ALLOWED_HEADERS = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
]


NO_CREDENTIALS = (
    "No way to check a token is configured: set BETTER_AUTH_SECRET (HS256 tokens) and/or "
    "BETTER_AUTH_URL (Better Auth's JWKS, and sessions with BETTER_AUTH_SESSIONS=1)."
)


def create_app(settings: Settings) -> AsyncApp:
    if not settings.accepts_credentials:
        raise ConfigError(NO_CREDENTIALS)
    engine = build_engine(settings.database_url, settings.pool)
    limiter = _rate_limiter(settings)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        if settings.auto_migrate:
            await run_in_threadpool(upgrade, engine)
        timeout = httpx2.Timeout(settings.auth_http_timeout)
        async with httpx2.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            try:
                # Starlette hands this state to every request as `request.state`.
                yield {
                    "store": _store(settings, engine),
                    "authenticator": _authenticator(settings, client),
                    "rate_limiter": limiter,
                }
            finally:
                engine.dispose()
                if limiter is not None:
                    await limiter.close()

    app = AsyncApp(
        __name__,
        specification_dir=SPEC_DIR,
        lifespan=lifespan,
        # Query parameters an operation does not declare are ignored (handlers/validation.py).
        strict_validation=False,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATORS,
        # Connexion's copy of the spec has every $ref inlined: ServedContract serves the file's
        # own, and Swagger UI reads it from there.
        swagger_ui_options=SwaggerUIOptions(
            swagger_ui_path="/docs", serve_spec=False, spec_path=JSON_PATH
        ),
    )
    operations.decorate_once(app)
    app.add_api(independent_spec())
    app.add_middleware(
        ServedContract, position=MiddlewarePosition.BEFORE_SWAGGER, documents=contract_documents()
    )
    app.add_middleware(TrailingSlash, position=MiddlewarePosition.BEFORE_ROUTING)
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
            RateLimits, position=MiddlewarePosition.BEFORE_EXCEPTION, limiter=limiter
        )
    # After the body is read and the credential checked (Better Auth may be slow): a place is
    # held only by a request ready to work, and for as long as it works.
    app.add_middleware(
        Admission,
        position=MiddlewarePosition.BEFORE_VALIDATION,
        slots=settings.pool.size + settings.pool.max_overflow,
        wait=settings.pool.timeout,
        exempt=frozenset({LIVENESS_PATH}),
    )
    problems.register(app)
    return app


def _store(settings: Settings, engine: Engine) -> TaskStore:
    return TaskStore(
        engine,
        quota=settings.task_quota,
        retention=settings.tombstone_retention,
        idempotency_ttl=settings.idempotency_key_lifetime,
    )


def _rate_limiter(settings: Settings) -> RateLimiter | None:
    if not settings.rate_limit_enabled:
        return None
    counter = (
        RedisCounter(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_timeout,
        )
        if settings.redis_url
        else MemoryCounter()
    )
    window = settings.rate_limit_window
    return RateLimiter(
        counter,
        user=Policy("user", settings.rate_limit_per_user, window),
        address=Policy("address", settings.rate_limit_per_address, window),
    )


def _authenticator(settings: Settings, client: httpx2.AsyncClient) -> Authenticator:
    jwks_url, session_url = settings.jwks_endpoint, settings.session_endpoint
    return Authenticator(
        secret=settings.auth_secret,
        secret_claims=_expected(settings),
        jwks=(
            JwksCache(
                jwks_url,
                client,
                refetch_cooldown=settings.jwks_refetch_cooldown,
                timeout=settings.auth_http_timeout,
            )
            if jwks_url
            else None
        ),
        # Better Auth's jwt() plugin sets both claims to its base URL unless told otherwise.
        jwks_claims=Expected(
            settings.jwt_issuer or settings.better_auth_url,
            settings.jwt_audience or settings.better_auth_url,
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
    )


def _expected(settings: Settings) -> Expected:
    return Expected(settings.jwt_issuer, settings.jwt_audience)


def app_from_env() -> AsyncApp:
    """The factory uvicorn (or another ASGI server) calls in each worker process."""
    settings = Settings.from_env()
    _refuse_a_guessable_secret(settings)
    return create_app(settings)


def _refuse_a_guessable_secret(settings: Settings) -> None:
    weakness = weak_secret(settings.auth_secret) if settings.auth_secret else None
    if weakness is not None:
        raise ConfigError(
            f"BETTER_AUTH_SECRET {weakness}, so anyone could sign tokens with it; "
            "set it to a random value, e.g. the output of `openssl rand -base64 32`."
        )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()
    if not settings.accepts_credentials and not args.dev:
        raise ConfigError(f"{NO_CREDENTIALS} To try the API, run `todo-api serve --dev`.")
    _refuse_a_guessable_secret(settings)
    _refuse_a_taken_port(args.host, args.port)
    # Opened even when not migrating: an engine connects to nothing until used, but a URL it
    # cannot make sense of is one line here, not a traceback from each worker.
    with _database(settings) as engine:
        if settings.auto_migrate:
            upgrade(engine)
            # Once, here, rather than in each worker's lifespan, where a database that fails
            # is a traceback per worker. The workers read this from the environment.
            os.environ["AUTO_MIGRATE"] = "false"
    if args.dev and not settings.auth_secret:
        # Workers are separate processes: they read the throwaway secret from the environment.
        os.environ["BETTER_AUTH_SECRET"] = secrets.token_urlsafe(48)
        settings = Settings.from_env()
        logger.warning(
            "--dev: signing tokens with a random secret made for this run only. "
            "Never use --dev in production."
        )
    if args.dev and settings.auth_secret:
        token = mint_token(
            settings.auth_secret, DEMO_USER, dt.timedelta(hours=12), _expected(settings)
        )
        base = f"http://{args.host}:{args.port}/api"
        print(f"Swagger UI: {base}/docs  (Authorize with the token below)", file=sys.stderr)
        print(f"Demo token for user {DEMO_USER!r}, valid 12 hours:\n{token}", file=sys.stderr)
        sys.stderr.flush()
    limits = EdgeLimits(
        max_head_bytes=settings.max_head_bytes,
        head_timeout=settings.head_timeout,
        max_connections=settings.max_connections,
    )
    uvicorn.run(
        "todo_api:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=functools.partial(GuardedHttpToolsProtocol, limits=limits),  # type: ignore[arg-type]
        timeout_keep_alive=settings.keep_alive_timeout,
        proxy_headers=True,
        log_config=_log_config(),
        # On SIGTERM, requests in flight get this long to finish before the process exits.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    return 0


def _refuse_a_taken_port(host: str, port: int) -> None:
    """One line, before any migration or token, if uvicorn could not listen on host:port:
    uvicorn itself finds out only after the app has started."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, protocol, _, address in addresses:
            with socket.socket(family, kind, protocol) as probe:
                # As uvicorn (asyncio) sets its own: a port in TIME_WAIT after a previous run is
                # free, and an IPv6 address does not also claim the IPv4 port.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
    except OSError as exc:
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with the application's own loggers beside it, all in one format,
    and credentials scrubbed from every line. `main` applies it for every command, and uvicorn
    again in each worker process it starts."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactCredentials}}
    formatter = {"()": "uvicorn.logging.DefaultFormatter", "fmt": LOG_FORMAT}
    # uvicorn looks up both of its formatters by name (to colour them), so both names stay.
    config["formatters"] = {"default": formatter, "access": dict(formatter)}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["root"] = {"handlers": ["default"], "level": _log_level()}
    return config


def _token(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.auth_secret:
        raise ConfigError("BETTER_AUTH_SECRET is not set: there is no secret to sign with.")
    lifetime = dt.timedelta(seconds=args.ttl)
    print(mint_token(settings.auth_secret, args.user_id, lifetime, _expected(settings)))
    return 0


def _db_upgrade(_args: argparse.Namespace) -> int:
    with _database(Settings.from_env()) as engine:
        upgrade(engine)
    print("database is up to date")
    return 0


def _db_purge(_args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    with _database(settings) as engine:
        purged = _store(settings, engine).purge()
    print(
        f"purged {purged.tasks} deleted tasks older than {settings.tombstone_retention_days} "
        f"days and {purged.idempotency_keys} expired idempotency keys"
    )
    return 0


class Unavailable(Exception):
    """Something a command needs from outside, a database or a port, failed it; the message
    says which and why, in a line."""


@contextmanager
def _database(settings: Settings) -> Iterator[Engine]:
    """The database for one command, disposed of after. A database that is unreachable or
    refuses the command is one line naming it (never its password) and the driver's reason."""
    where = _database_name(settings.database_url)
    try:
        engine = build_engine(settings.database_url, settings.pool)
    except (ArgumentError, ImportError) as exc:  # no dialect or driver of that name
        raise ConfigError(
            f"DATABASE_URL {where}: {exc}; the API runs on PostgreSQL or SQLite."
        ) from None
    try:
        yield engine
    except DBAPIError as exc:
        lines = str(exc.orig or exc).strip().splitlines() or [type(exc).__name__]
        raise Unavailable(f"database {where}: {lines[0]}") from exc
    finally:
        engine.dispose()


def _database_name(url: str) -> str:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            "DATABASE_URL is not a database URL, such as postgresql://USER:PASSWORD@HOST/NAME "
            "or sqlite:///todo.db."
        ) from None
    # No query string either: libpq takes a password there too (?password=...).
    return parsed.set(query={}).render_as_string(hide_password=True)


DESCRIPTION = (
    "A schema-first, multi-user Todo REST API: run it, mint a token to try it with, and "
    "migrate or purge its database. Settings come from environment variables, and from a .env "
    "file in the current directory."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description=DESCRIPTION)
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="one of:"
    )

    about = "run the API with uvicorn, after applying pending migrations (AUTO_MIGRATE)"
    serve = commands.add_parser("serve", help=about, description=about)
    serve.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--port",
        type=_whole_number(1, 65_535),
        default=8000,
        help="the TCP port to listen on (default: %(default)s)",
    )
    serve.add_argument(
        "--workers",
        type=_whole_number(1, 1_000),
        default=1,
        help="how many server processes to run (default: %(default)s)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="without BETTER_AUTH_SECRET, sign with a random secret; print a demo token",
    )
    serve.set_defaults(run=_serve)

    about = "print an HS256 token for USER_ID, signed with BETTER_AUTH_SECRET"
    token = commands.add_parser("token", help=about, description=about)
    token.add_argument(
        "user_id",
        metavar="USER_ID",
        type=_user_id,
        help="the user the token speaks for (its subject), a user id as the API defines one",
    )
    token.add_argument(
        "--ttl",
        type=_whole_number(1, MAX_TOKEN_TTL, " seconds (a year)"),
        default=3600,
        help=f"the token's lifetime in seconds, 1 to {MAX_TOKEN_TTL} (default: %(default)s)",
    )
    token.set_defaults(run=_token)

    about = "manage the database at DATABASE_URL"
    db = commands.add_parser("db", help=about, description=about)
    db_commands = db.add_subparsers(
        dest="db_command", required=True, metavar="COMMAND", help="one of:"
    )
    about = "apply pending migrations"
    db_commands.add_parser("upgrade", help=about, description=about).set_defaults(run=_db_upgrade)
    about = "remove deleted tasks past their retention and expired idempotency keys"
    db_commands.add_parser("purge", help=about, description=about).set_defaults(run=_db_purge)
    return parser


def _whole_number(low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`, else a usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low} to {high}{unit}, not {value}")
        return value

    return parse


def _user_id(text: str) -> str:
    # The server refuses a token whose subject its spec would not take as a user id.
    if not is_user_id(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a user id the API accepts (see UserId in openapi/openapi.yaml)"
        )
    return text


def _log_level() -> str:
    level = os.environ.get("LOG_LEVEL", "INFO").strip().upper()
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR; not {level!r}.")
    return level


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _load_dotenv()
        logging.config.dictConfig(_log_config())
        return args.run(args)
    except ConfigError as exc:
        print(f"todo-api: {exc}", file=sys.stderr)
        return 2
    except Unavailable as exc:
        print(f"todo-api: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Nothing the CLI knows how to explain, so perhaps a bug, perhaps a mistake it did not
        # foresee: one line a person can act on, and the traceback (scrubbed, like every log
        # line) for whoever asks. Errors while serving are uvicorn's to log, traceback and all.
        logger.debug("todo-api %s failed", args.command, exc_info=True)
        reason = str(exc).strip().splitlines() or [""]
        print(
            f"todo-api: unexpected {type(exc).__name__}: {reason[0]} "
            "(LOG_LEVEL=DEBUG shows the traceback)",
            file=sys.stderr,
        )
        return 1


def _load_dotenv() -> None:
    # The .env of the directory the command runs in; real environment variables win.
    path = Path.cwd() / ".env"
    try:
        load_dotenv(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
