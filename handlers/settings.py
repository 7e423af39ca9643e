"""One typed settings object, read from the environment (and `.env`, loaded by the CLI)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from storage import PoolSettings

DEFAULT_DATABASE_URL = "sqlite:///todo.db"
# RFC 7518 section 3.2: an HS256 key must have at least as many bits as the hash.
MIN_SECRET_LENGTH = 32


class ConfigError(ValueError):
    """A setting that is missing or unusable; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    auth_secret: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    cors_origins: tuple[str, ...] = ("http://localhost:3000",)
    auto_migrate: bool = True
    pool: PoolSettings = field(default_factory=PoolSettings)
    validate_responses: bool = False

    def __post_init__(self) -> None:
        if self.auth_secret is not None and len(self.auth_secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"BETTER_AUTH_SECRET must be at least {MIN_SECRET_LENGTH} characters long "
                "(generate one with `openssl rand -base64 32`)."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        def text(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        def number(name: str, default: float, kind: type = int) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, not {raw!r}.") from None
            if value <= 0:
                raise ConfigError(f"{name} must be positive, not {raw!r}.")
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
        defaults = PoolSettings()
        return cls(
            database_url=text("DATABASE_URL") or text("NEON_DB_URL") or DEFAULT_DATABASE_URL,
            auth_secret=text("BETTER_AUTH_SECRET"),
            jwt_issuer=text("JWT_ISSUER"),
            jwt_audience=text("JWT_AUDIENCE"),
            cors_origins=(
                tuple(o.strip().rstrip("/") for o in origins.split(",") if o.strip())
                if origins is not None
                else cls.cors_origins
            ),
            auto_migrate=flag("AUTO_MIGRATE", True),
            pool=PoolSettings(
                size=int(number("DB_POOL_SIZE", defaults.size)),
                max_overflow=int(number("DB_MAX_OVERFLOW", defaults.max_overflow)),
                timeout=number("DB_POOL_TIMEOUT", defaults.timeout, float),
            ),
        )
