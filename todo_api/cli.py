"""The `todo-api` command line: serve, mint a token, migrate or purge the database."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import logging.config
import os
import secrets
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from dotenv import load_dotenv
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from storage import build_engine, upgrade
from todo_api import about
from todo_api.app import (
    NO_CREDENTIALS,
    expected_claims,
    refuse_a_guessable_secret,
    refuse_a_guessable_signing_secret,
    task_store,
)
from todo_api.auth.authenticator import mint_token
from todo_api.contract import is_user_id
from todo_api.logs import log_config
from todo_api.metrics import MULTIPROCESS_DIR
from todo_api.settings import MAX_PORT, MAX_PROCESSES, ConfigError, Settings
from todo_api.variables import usable_cpus
from todo_api.web.server import EdgeLimits, GuardedHttpToolsProtocol

logger = logging.getLogger("todo_api")

DEMO_USER = "demo-user"
# The longest a minted token may live: `todo-api token` is for trying the API and for scripts.
MAX_TOKEN_TTL = 365 * 86_400
GRACEFUL_SHUTDOWN_SECONDS = 30


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()
    # An option given wins over its variable (PORT, WEB_CONCURRENCY), read and checked above.
    port = settings.port if args.port is None else args.port
    workers = settings.web_concurrency if args.workers is None else args.workers
    if not settings.accepts_credentials and not args.dev:
        raise ConfigError(f"{NO_CREDENTIALS} To try the API, run `todo-api serve --dev`.")
    refuse_a_guessable_secret(settings)
    _refuse_a_taken_port(args.host, port)
    # Opened even when not migrating: an engine connects to nothing until used, but a URL it
    # cannot make sense of is one line here, not a traceback from each worker.
    with _database(settings) as engine:
        if settings.auto_migrate:
            upgrade(engine)
            logger.info("the database is up to date", extra={"event": "migrated"})
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
            settings.auth_secret, DEMO_USER, dt.timedelta(hours=12), expected_claims(settings)
        )
        base = f"http://{args.host}:{port}/api"
        print(f"Swagger UI: {base}/docs  (Authorize with the token below)", file=sys.stderr)
        print(f"Demo token for user {DEMO_USER!r}, valid 12 hours:\n{token}", file=sys.stderr)
        sys.stderr.flush()
    limits = EdgeLimits(
        max_head_bytes=settings.max_head_bytes,
        head_timeout=settings.head_timeout,
        max_connections=settings.max_connections,
        max_connections_per_address=settings.max_connections_per_address,
    )
    if workers > 1 and not settings.redis_url:
        logger.warning(
            "%d worker processes without REDIS_URL: rate limits and the per-user stream bound "
            "are counted in each process apart, so a client may get up to %d times each; set "
            "REDIS_URL to share them",
            workers,
            workers,
            extra={"event": "limits_per_process"},
        )
    logger.info(
        "serving on http://%s:%d/api with %d worker process(es)",
        args.host,
        port,
        workers,
        extra={"event": "startup"},
    )
    with _metrics_directory(settings.metrics_enabled and workers > 1):
        uvicorn.run(
            "todo_api.app:app_from_env",
            factory=True,
            host=args.host,
            port=port,
            workers=workers,
            http=functools.partial(GuardedHttpToolsProtocol, limits=limits),  # type: ignore[arg-type]
            timeout_keep_alive=settings.keep_alive_timeout,
            proxy_headers=True,
            log_config=log_config(settings.log_level, args.log_format),
            # Each request's one line is the application's own (todo_api.web.observe).
            access_log=False,
            # On SIGTERM, requests in flight get this long to finish before the process exits.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    return 0


@contextmanager
def _metrics_directory(shared: bool) -> Iterator[None]:
    """With several workers, a fresh directory for prometheus-client's multiprocess files, made
    before the workers start (they read it from the environment when they import it) and
    removed after: files left from an earlier run would count again."""
    if not shared:
        # One process keeps its values in memory; a directory named from outside would only
        # be read, never written.
        os.environ.pop(MULTIPROCESS_DIR, None)
        yield
        return
    directory = tempfile.mkdtemp(prefix="todo-api-metrics-")
    os.environ[MULTIPROCESS_DIR] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


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
        raise CannotStart(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _token(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.auth_secret:
        raise ConfigError("BETTER_AUTH_SECRET is not set: there is no secret to sign with.")
    # What `serve` refuses to check tokens with, this refuses to sign them with, in its words.
    refuse_a_guessable_signing_secret(settings)
    lifetime = dt.timedelta(seconds=args.ttl)
    print(mint_token(settings.auth_secret, args.user_id, lifetime, expected_claims(settings)))
    return 0


def _db_upgrade(_args: argparse.Namespace) -> int:
    with _database(Settings.from_env()) as engine:
        upgrade(engine)
    print("database is up to date")
    return 0


def _db_purge(_args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    with _database(settings) as engine:
        purged = task_store(settings, engine).purge()
    print(
        f"purged {purged.tasks} deleted tasks older than {settings.tombstone_retention_days} "
        f"days and {purged.idempotency_keys} expired idempotency keys"
    )
    return 0


class CannotStart(Exception):
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
        raise CannotStart(f"database {where}: {lines[0]}") from exc
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
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="one of:"
    )

    about = "run the API with uvicorn, after applying pending migrations (AUTO_MIGRATE)"
    serve = commands.add_parser("serve", help=about, description=about)
    serve.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: %(default)s)"
    )
    # Container platforms (Heroku's convention, kept by Cloud Run, Render, Fly.io) say these in
    # the environment: Settings reads them, after .env, and a bad one is refused by its name.
    serve.add_argument(
        "--port",
        type=_whole_number(1, MAX_PORT),
        help=f"the TCP port to listen on (default: $PORT, else {Settings.port})",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        help="how many server processes to run, or `auto` for one per CPU this process may use "
        f"(default: $WEB_CONCURRENCY, else {Settings.web_concurrency})",
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


def _version() -> str:
    unknown = f"(version unknown: the {about.DISTRIBUTION} distribution is not installed)"
    return about.version() or unknown


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


def _workers(text: str) -> int:
    """A number of server processes, or `auto`: one per CPU this process may run on."""
    if text.strip().lower() == "auto":
        return usable_cpus()
    return _whole_number(1, MAX_PROCESSES)(text)


def _user_id(text: str) -> str:
    # The server refuses a token whose subject its spec would not take as a user id.
    if not is_user_id(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a user id the API accepts (see UserId in openapi/openapi.yaml)"
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _load_dotenv()
        # JSON lines for a deployed server; a readable line for a person at a terminal.
        serving = args.command == "serve" and not args.dev
        args.log_format = Settings.log_format_from(os.environ, "json" if serving else "text")
        level = Settings.log_level_from(os.environ)
        logging.config.dictConfig(log_config(level, args.log_format))
        status: int = args.run(args)  # each subcommand sets `run`: one of the _* below
        return status
    except ConfigError as exc:
        print(f"todo-api: {exc}", file=sys.stderr)
        return 2
    except CannotStart as exc:
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
