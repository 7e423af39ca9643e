"""The app factory and the `todo-api` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from dotenv import load_dotenv
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from handlers import problems
from handlers.auth import TokenVerifier
from handlers.contract import SPEC_DIR, independent_spec
from handlers.middleware import TrailingSlash
from handlers.settings import ConfigError, Settings
from handlers.validation import VALIDATORS
from storage import TaskStore, build_engine, upgrade

DEMO_USER = "demo-user"
PAGING_HEADERS = ["X-Total-Count", "Link", "Location"]


def create_app(settings: Settings) -> AsyncApp:
    if not settings.auth_secret:
        raise ConfigError("BETTER_AUTH_SECRET is not set: no token could be checked.")
    engine = build_engine(settings.database_url, settings.pool)
    verifier = TokenVerifier(settings.auth_secret, settings.jwt_issuer, settings.jwt_audience)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        if settings.auto_migrate:
            await run_in_threadpool(upgrade, engine)
        try:
            # Starlette hands this state to every request as `request.state`.
            yield {"store": TaskStore(engine), "verifier": verifier}
        finally:
            engine.dispose()

    app = AsyncApp(
        __name__,
        specification_dir=SPEC_DIR,
        lifespan=lifespan,
        strict_validation=True,
        validate_responses=settings.validate_responses,
        validator_map=VALIDATORS,
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path="/docs"),
    )
    app.add_api(independent_spec())
    app.add_middleware(TrailingSlash, position=MiddlewarePosition.BEFORE_ROUTING)
    # Outermost, so that error answers carry CORS headers too and the browser can read them.
    app.add_middleware(
        CORSMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        allow_origins=list(settings.cors_origins),
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=PAGING_HEADERS,
        max_age=600,
    )
    problems.register(app)
    return app


def app_from_env() -> AsyncApp:
    """The factory uvicorn calls in each worker process."""
    return create_app(Settings.from_env())


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()
    if not settings.auth_secret:
        if not args.dev:
            raise ConfigError(
                "BETTER_AUTH_SECRET is not set. Set it (in the environment or .env) to the "
                "secret your Better Auth server signs with, or run `todo-api serve --dev` to "
                "try the API with a throwaway secret."
            )
        # Workers are separate processes: they read the throwaway secret from the environment.
        os.environ["BETTER_AUTH_SECRET"] = secrets.token_urlsafe(48)
        settings = Settings.from_env()
        print(
            "WARNING: --dev: signing tokens with a random secret made for this run only. "
            "Never use --dev in production.",
            file=sys.stderr,
        )
    if args.dev:
        verifier = TokenVerifier(
            settings.auth_secret or "", settings.jwt_issuer, settings.jwt_audience
        )
        token = verifier.mint(DEMO_USER, dt.timedelta(hours=12))
        base = f"http://{args.host}:{args.port}/api"
        print(f"Swagger UI: {base}/docs  (Authorize with the token below)", file=sys.stderr)
        print(f"Demo token for user {DEMO_USER!r}, valid 12 hours:\n{token}", file=sys.stderr)
        sys.stderr.flush()
    uvicorn.run(
        "todo_api:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if not settings.auth_secret:
        raise ConfigError("BETTER_AUTH_SECRET is not set: there is no secret to sign with.")
    verifier = TokenVerifier(settings.auth_secret, settings.jwt_issuer, settings.jwt_audience)
    print(verifier.mint(args.user_id, dt.timedelta(seconds=args.ttl)))
    return 0


def _db_upgrade(_args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    engine = build_engine(settings.database_url, settings.pool)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    print("database is up to date")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo-api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--dev",
        action="store_true",
        help="without BETTER_AUTH_SECRET, sign with a random secret; print a demo token",
    )
    serve.set_defaults(run=_serve)

    token = commands.add_parser("token", help="mint an HS256 token for USER_ID")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    token.set_defaults(run=_token)

    db = commands.add_parser("db", help="database commands")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply pending migrations").set_defaults(run=_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The .env of the directory the command runs in; real environment variables win.
    load_dotenv(Path.cwd() / ".env")
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper())
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"todo-api: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
