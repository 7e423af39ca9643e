"""Engines: PostgreSQL (Neon serverless in production) through psycopg2, or an SQLite file."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from todo_api.settings import PoolSettings

logger = logging.getLogger("todo_api.storage")


def normalize_url(url: str) -> str:
    """Accept the `postgres://` and `postgresql://` forms that Neon and others hand out."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def build_engine(url: str, pool: PoolSettings | None = None) -> Engine:
    pool = pool or PoolSettings()
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": pool.connect_timeout})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # sslmode and any other libpq option travel in the URL's query string as given.
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=pool.recycle,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout,
        connect_args=postgres_connect_args(pool.connect_timeout),
    )
    event.listen(engine, "connect", _postgres_session(pool.statement_timeout))
    return engine


def postgres_connect_args(connect_timeout: int) -> dict[str, int]:
    """libpq's options for every PostgreSQL connection: a server that vanishes mid-query (no
    reset, no answer) is given up on within seconds, rather than the many minutes the kernel
    would otherwise wait."""
    return {
        "connect_timeout": connect_timeout,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
        "tcp_user_timeout": connect_timeout * 1000,
    }


def _postgres_session(statement_timeout: int) -> Callable[[Any, Any], None]:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        # psycopg2 reads timestamptz in the session's time zone: a server default east of UTC
        # would turn 9999-12-31T23:00Z into a year Python cannot hold. (SETs, not startup
        # options, because Neon's connection pooler refuses startup options.)
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SET TIME ZONE 'UTC'; SET statement_timeout = %s", (statement_timeout * 1000,)
            )
        dbapi_connection.commit()

    return configure


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite's lower() folds ASCII only; case-insensitive search and sort must fold "Ä" too.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    # The busy timeout queues writers; WAL lets readers proceed while one writer writes.
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        # Another connection holds the lock the switch needs (SQLite answers at once, without
        # waiting); WAL is a property of the file, so a later connection switches it.
        logger.debug("SQLite journal mode not switched to WAL on this connection")
    cursor.close()


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value
