"""One typed settings object, read from the environment (and `.env`, loaded by the CLI)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from todo_api.logs import LOG_FORMATS

DEFAULT_DATABASE_URL = "sqlite:///todo.db"
# RFC 7518 section 3.2: an HS256 key must have at least as many bits as the hash.
MIN_SECRET_LENGTH = 32
# A day: the longest Retry-After the spec declares.
MAX_RATE_LIMIT_WINDOW = 86_400
# Bounds that keep "now minus the period" a date Python and the databases can hold.
MAX_TOMBSTONE_RETENTION_DAYS = 3_650
MAX_IDEMPOTENCY_KEY_TTL = 30 * 86_400
# Every value of BETTER_AUTH_SECRET this project ships as an example (.env.example);
# tests/api/test_secrets.py keeps this in step with the files.
SHIPPED_SECRETS = frozenset({"replace-with-at-least-32-random-characters"})
# Words that mark a secret a person made up rather than generated.
WEAK_WORDS = (
    "secret",
    "password",
    "passwd",
    "changeme",
    "change-me",
    "replace",
    "example",
    "placeholder",
    "default",
    "qwerty",
    "letmein",
    "admin",
)
MIN_DISTINCT_CHARACTERS = 6
STREAM_WAKEUPS = ("auto", "listen", "poll")
# A lease shorter than a claim round and a write would send reminders twice; an hour is as
# late as a lost claim's reminder may come.
MIN_REMINDER_LEASE = 2
MAX_REMINDER_LEASE = 3_600
# Neon names a database's pooled (PgBouncer, transaction mode) endpoint by this host suffix.
POOLED_HOST = "-pooler."
# The dialect of an SQLAlchemy URL, `dialect[+driver]://`, read as SQLAlchemy's make_url reads
# it, so that settings need no database library.
URL_SCHEME = re.compile(r"([\w+]+)://")


def backend_name(url: str) -> str | None:
    """The database a URL names (`postgresql`, `sqlite`), taking `postgres://` as PostgreSQL
    as storage/database.py's normalize_url does; None for a URL without a scheme."""
    match = URL_SCHEME.match(url)
    if match is None:
        return None
    scheme = match.group(1)
    return "postgresql" if scheme == "postgres" else scheme.split("+")[0]


class ConfigError(ValueError):
    """A setting that is missing or unusable; the message says which and why."""


@dataclass(frozen=True)
class PoolSettings:
    """The PostgreSQL connection pool of one server process (storage/database.py)."""

    size: int = 5
    max_overflow: int = 5
    timeout: float = 10.0
    # Neon closes idle connections (and suspends idle computes), so never keep one for long.
    recycle: int = 300
    # Seconds: to open a connection, and for the server to run one statement. A Neon compute
    # waking from suspension takes a few seconds to accept a connection.
    connect_timeout: int = 10
    statement_timeout: int = 15


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    auth_secret: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    better_auth_url: str | None = None
    jwks_url: str | None = None
    better_auth_sessions: bool = False
    session_cache_ttl: float = 30.0
    jwks_refetch_cooldown: float = 60.0
    auth_http_timeout: float = 5.0
    max_body_bytes: int = 64 * 1024
    task_quota: int = 10_000
    tombstone_retention_days: int = 30
    idempotency_key_ttl: float = 86_400.0
    rate_limit_enabled: bool = True
    rate_limit_per_user: int = 600
    rate_limit_per_address: int = 120
    rate_limit_window: int = 60
    redis_url: str | None = None
    redis_max_connections: int = 32
    redis_timeout: float = 0.25
    max_head_bytes: int = 16 * 1024
    head_timeout: float = 10.0
    body_idle_timeout: float = 5.0
    body_timeout: float = 30.0
    keep_alive_timeout: int = 5
    max_connections: int = 1000
    max_connections_per_address: int = 100
    cors_origins: tuple[str, ...] = ("http://localhost:3000",)
    auto_migrate: bool = True
    pool: PoolSettings = field(default_factory=PoolSettings)
    validate_responses: bool = False
    log_level: str = "INFO"
    metrics_enabled: bool = False
    metrics_token: str | None = None
    otel_endpoint: str | None = None
    database_direct_url: str | None = None
    stream_wakeups: str = "auto"
    streams_per_user: int = 10
    # Half of MAX_CONNECTIONS unless set: the other half is ordinary requests' room.
    streams_per_process: int = 500
    stream_heartbeat: float = 15.0
    stream_send_timeout: float = 10.0
    stream_max_seconds: float = 3600.0
    stream_ticket_seconds: float = 60.0
    # How long a claimed reminder waits for a stream to confirm it before it may be claimed
    # again (todo_api/live/reminders.py).
    reminder_lease_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.auth_secret is not None and len(self.auth_secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"BETTER_AUTH_SECRET must be at least {MIN_SECRET_LENGTH} characters long "
                "(generate one with `openssl rand -base64 32`)."
            )
        if self.rate_limit_window > MAX_RATE_LIMIT_WINDOW:
            raise ConfigError(f"RATE_LIMIT_WINDOW must be at most {MAX_RATE_LIMIT_WINDOW} seconds.")
        if self.tombstone_retention_days > MAX_TOMBSTONE_RETENTION_DAYS:
            raise ConfigError(
                f"TOMBSTONE_RETENTION_DAYS must be at most {MAX_TOMBSTONE_RETENTION_DAYS} days."
            )
        if self.idempotency_key_ttl > MAX_IDEMPOTENCY_KEY_TTL:
            raise ConfigError(
                f"IDEMPOTENCY_KEY_TTL must be at most {MAX_IDEMPOTENCY_KEY_TTL} seconds (30 days)."
            )
        if "*" in self.cors_origins and len(self.cors_origins) > 1:
            raise ConfigError(
                "CORS_ORIGINS=* means any origin (without credentials): list no origins beside it."
            )
        if self.streams_per_process >= self.max_connections:
            raise ConfigError(
                f"STREAMS_PER_PROCESS ({self.streams_per_process}) must be below "
                f"MAX_CONNECTIONS ({self.max_connections}): streams would otherwise hold every "
                "connection, and ordinary requests would be answered 503."
            )
        if self.stream_wakeups not in STREAM_WAKEUPS:
            raise ConfigError(
                f"STREAM_WAKEUPS must be one of {', '.join(STREAM_WAKEUPS)}; "
                f"not {self.stream_wakeups!r}."
            )
        if self.stream_wakeups == "listen" and not self.listens_on_postgres:
            raise ConfigError("STREAM_WAKEUPS=listen needs PostgreSQL (DATABASE_URL).")
        if not MIN_REMINDER_LEASE <= self.reminder_lease_seconds <= MAX_REMINDER_LEASE:
            raise ConfigError(
                f"REMINDER_LEASE_SECONDS must be from {MIN_REMINDER_LEASE} to "
                f"{MAX_REMINDER_LEASE} seconds, not {self.reminder_lease_seconds:g}."
            )
        if self.better_auth_sessions and not self.better_auth_url:
            raise ConfigError("BETTER_AUTH_SESSIONS needs BETTER_AUTH_URL to check sessions at.")
        if (
            self.jwks_url
            and not self.better_auth_url
            and not (self.jwt_issuer and self.jwt_audience)
        ):
            # Without BETTER_AUTH_URL there is no default issuer or audience to hold tokens to.
            raise ConfigError("JWKS_URL without BETTER_AUTH_URL needs JWT_ISSUER and JWT_AUDIENCE.")

    @property
    def any_origin(self) -> bool:
        """`CORS_ORIGINS=*`: any origin may call, and then never with credentials."""
        return "*" in self.cors_origins

    @property
    def listens_on_postgres(self) -> bool:
        return backend_name(self.database_direct_url or self.database_url) == "postgresql"

    @property
    def wakeups(self) -> str:
        """How this process hears of other processes' writes: `listen` or `poll`.

        `auto` listens on PostgreSQL, on DATABASE_DIRECT_URL if set, and polls on SQLite and
        behind Neon's pooled endpoint (a transaction-mode pooler drops LISTEN sessions).
        """
        if self.stream_wakeups != "auto":
            return self.stream_wakeups
        if not self.listens_on_postgres:
            return "poll"
        if self.database_direct_url is None and POOLED_HOST in self.database_url:
            return "poll"
        return "listen"

    @property
    def tombstone_retention(self) -> dt.timedelta:
        return dt.timedelta(days=self.tombstone_retention_days)

    @property
    def idempotency_key_lifetime(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.idempotency_key_ttl)

    @property
    def jwks_endpoint(self) -> str | None:
        if self.jwks_url:
            return self.jwks_url
        return f"{self.better_auth_url}/api/auth/jwks" if self.better_auth_url else None

    @property
    def session_endpoint(self) -> str | None:
        if not self.better_auth_sessions:
            return None
        return f"{self.better_auth_url}/api/auth/get-session"

    @property
    def accepts_credentials(self) -> bool:
        """Whether any kind of bearer credential could be checked."""
        return bool(self.auth_secret or self.jwks_endpoint or self.session_endpoint)

    @classmethod
    def log_level_from(cls, environ: Mapping[str, str]) -> str:
        """LOG_LEVEL alone: logging is set up before the other settings are read, so that a
        mistake in them is logged too."""
        level = environ.get("LOG_LEVEL", "").strip().upper() or cls.log_level
        if level not in logging.getLevelNamesMapping():
            raise ConfigError(
                f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR; not {level!r}."
            )
        return level

    @staticmethod
    def log_format_from(environ: Mapping[str, str], default: str) -> str:
        """LOG_FORMAT alone, for the same reason as LOG_LEVEL; its default is the command's."""
        log_format = environ.get("LOG_FORMAT", "").strip().lower() or default
        if log_format not in LOG_FORMATS:
            raise ConfigError(f"LOG_FORMAT must be json or text; not {log_format!r}.")
        return log_format

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        def text(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        def number(name: str, default: float, kind: Callable[[str], float] = int) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, not {raw!r}.") from None
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a positive number, not {raw!r}.")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = text(name)
            if raw is None:
                return default
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ConfigError(f"{name} must be true or false, not {raw!r}.")

        origins = text("CORS_ORIGINS")
        better_auth_url = text("BETTER_AUTH_URL")
        defaults = PoolSettings()
        max_connections = int(number("MAX_CONNECTIONS", cls.max_connections))
        return cls(
            database_url=text("DATABASE_URL") or text("NEON_DB_URL") or DEFAULT_DATABASE_URL,
            auth_secret=text("BETTER_AUTH_SECRET"),
            jwt_issuer=text("JWT_ISSUER"),
            jwt_audience=text("JWT_AUDIENCE"),
            better_auth_url=better_auth_url.rstrip("/") if better_auth_url else None,
            jwks_url=text("JWKS_URL"),
            better_auth_sessions=flag("BETTER_AUTH_SESSIONS", cls.better_auth_sessions),
            session_cache_ttl=number("SESSION_CACHE_TTL", cls.session_cache_ttl, float),
            jwks_refetch_cooldown=number("JWKS_REFETCH_COOLDOWN", cls.jwks_refetch_cooldown, float),
            auth_http_timeout=number("AUTH_HTTP_TIMEOUT", cls.auth_http_timeout, float),
            max_body_bytes=int(number("MAX_BODY_BYTES", cls.max_body_bytes)),
            task_quota=int(number("TASK_QUOTA", cls.task_quota)),
            tombstone_retention_days=int(
                number("TOMBSTONE_RETENTION_DAYS", cls.tombstone_retention_days)
            ),
            idempotency_key_ttl=number("IDEMPOTENCY_KEY_TTL", cls.idempotency_key_ttl, float),
            rate_limit_enabled=flag("RATE_LIMIT_ENABLED", cls.rate_limit_enabled),
            rate_limit_per_user=int(number("RATE_LIMIT_PER_USER", cls.rate_limit_per_user)),
            rate_limit_per_address=int(
                number("RATE_LIMIT_PER_ADDRESS", cls.rate_limit_per_address)
            ),
            rate_limit_window=int(number("RATE_LIMIT_WINDOW", cls.rate_limit_window)),
            redis_url=text("REDIS_URL"),
            redis_max_connections=int(number("REDIS_MAX_CONNECTIONS", cls.redis_max_connections)),
            redis_timeout=number("REDIS_TIMEOUT", cls.redis_timeout, float),
            max_head_bytes=int(number("MAX_HEAD_BYTES", cls.max_head_bytes)),
            head_timeout=number("HEAD_TIMEOUT", cls.head_timeout, float),
            body_idle_timeout=number("BODY_IDLE_TIMEOUT", cls.body_idle_timeout, float),
            body_timeout=number("BODY_TIMEOUT", cls.body_timeout, float),
            keep_alive_timeout=int(number("KEEP_ALIVE_TIMEOUT", cls.keep_alive_timeout)),
            max_connections=max_connections,
            max_connections_per_address=int(
                number("MAX_CONNECTIONS_PER_ADDRESS", cls.max_connections_per_address)
            ),
            cors_origins=(
                tuple(o.strip().rstrip("/") for o in origins.split(",") if o.strip())
                if origins is not None
                else cls.cors_origins
            ),
            auto_migrate=flag("AUTO_MIGRATE", True),
            log_level=cls.log_level_from(environ),
            metrics_enabled=flag("METRICS_ENABLED", cls.metrics_enabled),
            metrics_token=text("METRICS_TOKEN"),
            otel_endpoint=text("OTEL_EXPORTER_OTLP_ENDPOINT"),
            database_direct_url=text("DATABASE_DIRECT_URL"),
            stream_wakeups=(text("STREAM_WAKEUPS") or cls.stream_wakeups).lower(),
            streams_per_user=int(number("STREAMS_PER_USER", cls.streams_per_user)),
            streams_per_process=int(number("STREAMS_PER_PROCESS", max(1, max_connections // 2))),
            stream_heartbeat=number("STREAM_HEARTBEAT", cls.stream_heartbeat, float),
            stream_send_timeout=number("STREAM_SEND_TIMEOUT", cls.stream_send_timeout, float),
            stream_max_seconds=number("STREAM_MAX_SECONDS", cls.stream_max_seconds, float),
            stream_ticket_seconds=number("STREAM_TICKET_SECONDS", cls.stream_ticket_seconds, float),
            reminder_lease_seconds=number(
                "REMINDER_LEASE_SECONDS", cls.reminder_lease_seconds, float
            ),
            pool=PoolSettings(
                size=int(number("DB_POOL_SIZE", defaults.size)),
                max_overflow=int(number("DB_MAX_OVERFLOW", defaults.max_overflow)),
                timeout=number("DB_POOL_TIMEOUT", defaults.timeout, float),
                connect_timeout=int(number("DB_CONNECT_TIMEOUT", defaults.connect_timeout)),
                statement_timeout=int(number("DB_STATEMENT_TIMEOUT", defaults.statement_timeout)),
            ),
        )


def weak_secret(secret: str) -> str | None:
    """Why `secret` must not sign tokens, or None: anyone who can guess it can sign a token
    for any user."""
    if secret in SHIPPED_SECRETS:
        return "is the example value shipped in .env.example"
    if len(secret.encode()) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} bytes"
    # A string that is a shorter string repeated occurs in itself doubled, off its start.
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS or secret in (secret + secret)[1:-1]:
        return "is one character or pattern repeated"
    lowered = secret.lower()
    word = next((w for w in WEAK_WORDS if w in lowered), None)
    if word is not None:
        return f"contains the word {word!r}"
    return None
