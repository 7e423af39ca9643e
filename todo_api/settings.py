"""One typed settings object, read from the environment (and `.env`, loaded by the CLI).

Each setting is stated once, on its field: its variable, how its text is read, its default,
its bounds and its meaning (`todo_api/variables.py`). The table of docs/configuration.md and
`.env.example` are held to these fields by tests/unit/test_settings.py."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from todo_api.chat_settings import ChatSettings
from todo_api.secret_strength import MIN_SECRET_LENGTH
from todo_api.variables import (
    LOG_FORMAT,
    READ_ELSEWHERE,
    Variable,
    amount,
    backend_name,
    base_url,
    check_fields,
    count,
    declared,
    flag,
    log_format,
    log_level,
    lowered,
    origins,
    persistent_database_url,
    processes,
    read_fields,
    resource_url,
    setting,
    text,
    variable_of,
    whole,
)
from todo_api.variables import ConfigError as ConfigError

DEFAULT_DATABASE_URL = "sqlite:///todo.db"
# A day: the longest Retry-After the spec declares.
MAX_RATE_LIMIT_WINDOW = 86_400
# Bounds that keep "now minus the period" a date Python and the databases can hold.
MAX_TOMBSTONE_RETENTION_DAYS = 3_650
MAX_IDEMPOTENCY_KEY_TTL = 30 * 86_400
STREAM_WAKEUPS = ("auto", "listen", "poll")
# A lease shorter than a claim round and a write would send reminders twice; an hour is as
# late as a lost claim's reminder may come.
MIN_REMINDER_LEASE = 2
MAX_REMINDER_LEASE = 3_600
MAX_PORT = 65_535
# More server processes than this is a mistake rather than a plan.
MAX_PROCESSES = 1_000
# Neon names a database's pooled (PgBouncer, transaction mode) endpoint by this host suffix.
POOLED_HOST = "-pooler."


@dataclass(frozen=True)
class PoolSettings:
    """The PostgreSQL connection pool of one server process (storage/database.py)."""

    size: int = setting("DB_POOL_SIZE", count, 5, "Connections kept in the pool")
    max_overflow: int = setting("DB_MAX_OVERFLOW", count, 5, "Extra connections under load")
    timeout: float = setting(
        "DB_POOL_TIMEOUT", amount, 10.0, "Seconds a request waits for a connection; then 503"
    )
    # Neon closes idle connections (and suspends idle computes), so never keep one for long.
    recycle: int = 300
    # A Neon compute waking from suspension takes a few seconds to accept a connection.
    connect_timeout: int = setting(
        "DB_CONNECT_TIMEOUT", count, 10, "Seconds to open a PostgreSQL connection"
    )
    statement_timeout: int = setting(
        "DB_STATEMENT_TIMEOUT", count, 15, "Seconds one SQL statement may run"
    )


@dataclass(frozen=True)
class Settings:
    """Every setting of the service; keyword arguments in tests, `from_env` otherwise."""

    # What `serve` does without --port and --workers; container platforms set them.
    port: int = setting("PORT", whole, 8000, "The port `serve` listens on", least=1, most=MAX_PORT)
    web_concurrency: int = setting(
        "WEB_CONCURRENCY",
        processes,
        1,
        "Server processes `serve` runs",
        least=1,
        most=MAX_PROCESSES,
    )
    database_url: str = setting(
        "DATABASE_URL",
        persistent_database_url,
        DEFAULT_DATABASE_URL,
        "SQLAlchemy URL",
        aliases=("NEON_DB_URL",),
    )
    auth_secret: str | None = setting(
        "BETTER_AUTH_SECRET",
        text,
        None,
        "Shared secret of HS256 tokens",
        shortest=MIN_SECRET_LENGTH,
        hint=" (generate one with `openssl rand -base64 32`)",
        secret=True,
    )
    jwt_issuer: str | None = setting("JWT_ISSUER", text, None, "Expected `iss`")
    jwt_audience: str | None = setting("JWT_AUDIENCE", text, None, "Expected `aud`")
    better_auth_url: str | None = setting(
        "BETTER_AUTH_URL", base_url, None, "Better Auth's base URL: turns on its JWTs (JWKS)"
    )
    jwks_url: str | None = setting(
        "JWKS_URL", text, None, "Where the public keys are, if not Better Auth's /api/auth/jwks"
    )
    better_auth_mcp_resource: str | None = setting(
        "BETTER_AUTH_MCP_RESOURCE",
        resource_url,
        None,
        "The `resource` of Better Auth's mcp() plugin: accepts its access tokens bound to it",
    )
    better_auth_sessions: bool = setting(
        "BETTER_AUTH_SESSIONS", flag, False, "Also accept Better Auth session tokens"
    )
    session_cache_ttl: float = setting(
        "SESSION_CACHE_TTL", amount, 30.0, "Seconds a valid session answer is reused"
    )
    jwks_refetch_cooldown: float = setting(
        "JWKS_REFETCH_COOLDOWN", amount, 60.0, "Seconds between key fetches for unknown key ids"
    )
    auth_http_timeout: float = setting(
        "AUTH_HTTP_TIMEOUT", amount, 5.0, "Seconds to wait for Better Auth"
    )
    max_body_bytes: int = setting(
        "MAX_BODY_BYTES", count, 64 * 1024, "Largest request body accepted (413)"
    )
    task_quota: int = setting("TASK_QUOTA", count, 10_000, "Most tasks one user may keep (409)")
    tombstone_retention_days: int = setting(
        "TOMBSTONE_RETENTION_DAYS",
        count,
        30,
        "Days a deleted task stays restorable",
        most=MAX_TOMBSTONE_RETENTION_DAYS,
        unit="days",
    )
    idempotency_key_ttl: float = setting(
        "IDEMPOTENCY_KEY_TTL",
        amount,
        86_400.0,
        "Seconds an Idempotency-Key is remembered",
        most=MAX_IDEMPOTENCY_KEY_TTL,
        unit="seconds",
        hint=" (30 days)",
    )
    rate_limit_enabled: bool = setting("RATE_LIMIT_ENABLED", flag, True, "Rate limiting on or off")
    rate_limit_per_user: int = setting(
        "RATE_LIMIT_PER_USER", count, 600, "Requests per window per signed-in user"
    )
    rate_limit_per_address: int = setting(
        "RATE_LIMIT_PER_ADDRESS", count, 120, "Requests per window per address without credential"
    )
    rate_limit_window: int = setting(
        "RATE_LIMIT_WINDOW",
        count,
        60,
        "Seconds in a rate limit window",
        most=MAX_RATE_LIMIT_WINDOW,
        unit="seconds",
    )
    redis_url: str | None = setting(
        "REDIS_URL", text, None, "Redis that several processes share limits and bounds in"
    )
    redis_max_connections: int = setting(
        "REDIS_MAX_CONNECTIONS", count, 32, "Connections to Redis per process"
    )
    redis_timeout: float = setting(
        "REDIS_TIMEOUT", amount, 0.25, "Seconds to wait for a Redis connection or answer"
    )
    max_head_bytes: int = setting(
        "MAX_HEAD_BYTES", count, 16 * 1024, "Largest request head accepted (431)"
    )
    head_timeout: float = setting(
        "HEAD_TIMEOUT", amount, 10.0, "Seconds a request head may take to arrive"
    )
    body_idle_timeout: float = setting(
        "BODY_IDLE_TIMEOUT", amount, 5.0, "Seconds a request body may fall silent (408)"
    )
    body_timeout: float = setting(
        "BODY_TIMEOUT", amount, 30.0, "Seconds a whole request body may take (408)"
    )
    keep_alive_timeout: int = setting(
        "KEEP_ALIVE_TIMEOUT", count, 5, "Seconds an idle keep-alive connection stays open"
    )
    max_connections: int = setting(
        "MAX_CONNECTIONS", count, 1000, "Connections one server process holds"
    )
    max_connections_per_address: int = setting(
        "MAX_CONNECTIONS_PER_ADDRESS", count, 100, "Connections one address holds in a process"
    )
    cors_origins: tuple[str, ...] = setting(
        "CORS_ORIGINS",
        origins,
        ("http://localhost:3000",),
        "Comma-separated browser origins allowed to call; `*` is any, without credentials",
    )
    auto_migrate: bool = setting(
        "AUTO_MIGRATE", flag, True, "Apply pending migrations when the server starts"
    )
    pool: PoolSettings = field(default_factory=PoolSettings)
    validate_responses: bool = False
    log_level: str = setting("LOG_LEVEL", log_level, "INFO", "Python log level")
    metrics_enabled: bool = setting(
        "METRICS_ENABLED", flag, False, "Serve Prometheus metrics at /api/metrics"
    )
    metrics_token: str | None = setting(
        "METRICS_TOKEN", text, None, "Bearer token a metrics scrape must send", secret=True
    )
    mcp_enabled: bool = setting(
        "MCP_ENABLED", flag, True, "Serve the MCP tools at /api/mcp (404 while off)"
    )
    otel_endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT", text, None, "OTLP/HTTP endpoint that traces are sent to"
    )
    database_direct_url: str | None = setting(
        "DATABASE_DIRECT_URL", text, None, "Unpooled PostgreSQL URL to LISTEN on"
    )
    stream_wakeups: str = setting(
        "STREAM_WAKEUPS",
        lowered,
        "auto",
        "How a process hears of other processes' writes",
        choices=STREAM_WAKEUPS,
    )
    streams_per_user: int = setting(
        "STREAMS_PER_USER", count, 10, "Open event streams per user (429)"
    )
    # 500 when built by keyword; from the environment, half of MAX_CONNECTIONS unless set: the
    # other half is ordinary requests' room.
    streams_per_process: int = setting(
        "STREAMS_PER_PROCESS",
        count,
        500,
        "Open event streams per process (503)",
        derive=lambda known: max(1, known["max_connections"] // 2),
    )
    stream_heartbeat: float = setting(
        "STREAM_HEARTBEAT", amount, 15.0, "Seconds between heartbeats on a quiet stream"
    )
    stream_send_timeout: float = setting(
        "STREAM_SEND_TIMEOUT", amount, 10.0, "Seconds a reader may take to accept one write"
    )
    stream_max_seconds: float = setting(
        "STREAM_MAX_SECONDS", amount, 3600.0, "Seconds a stream lasts at most"
    )
    stream_ticket_seconds: float = setting(
        "STREAM_TICKET_SECONDS", amount, 60.0, "Seconds a stream ticket stays good"
    )
    # How long a claimed reminder waits for a stream to confirm it before it may be claimed
    # again (todo_api/live/reminders.py).
    reminder_lease_seconds: float = setting(
        "REMINDER_LEASE_SECONDS",
        amount,
        30.0,
        "Seconds a claimed reminder waits for its stream",
        least=MIN_REMINDER_LEASE,
        most=MAX_REMINDER_LEASE,
        unit="seconds",
    )

    chat: ChatSettings = field(default_factory=ChatSettings)

    def __post_init__(self) -> None:
        check_fields(self)
        # What no one field's bounds can say: how the fields go together.
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
        if self.stream_wakeups == "listen" and not self.listens_on_postgres:
            raise ConfigError("STREAM_WAKEUPS=listen needs PostgreSQL (DATABASE_URL).")
        if self.better_auth_sessions and not self.better_auth_url:
            raise ConfigError("BETTER_AUTH_SESSIONS needs BETTER_AUTH_URL to check sessions at.")
        if self.better_auth_mcp_resource and not self.jwks_endpoint:
            # The mcp() plugin signs its access tokens with the jwt() plugin's keys.
            raise ConfigError("BETTER_AUTH_MCP_RESOURCE needs BETTER_AUTH_URL (or JWKS_URL).")
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
    def oauth_issuer(self) -> str | None:
        """Better Auth's OAuth issuer: the `iss` of its mcp() plugin's access tokens (its base URL
        and /api/auth, or its jwt() plugin's `jwt.issuer`, which JWT_ISSUER then names), and
        the authorization server an MCP client is sent to."""
        if self.jwt_issuer:
            return self.jwt_issuer
        return f"{self.better_auth_url}/api/auth" if self.better_auth_url else None

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
        return str(variable_of(cls, "log_level").read(environ) or cls.log_level)

    @staticmethod
    def log_format_from(environ: Mapping[str, str], default: str) -> str:
        """LOG_FORMAT alone, for the same reason as LOG_LEVEL; its default is the command's."""
        return str(LOG_FORMAT.read(environ) or log_format(LOG_FORMAT.name, default))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(**read_fields(cls, environ))


def documented() -> tuple[Variable, ...]:
    """Every variable docs/configuration.md's table and `.env.example` describe."""
    return (*declared(Settings), *READ_ELSEWHERE)
