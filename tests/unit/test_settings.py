"""Configuration from the environment."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.database import normalize_url
from todo_api.settings import DEFAULT_DATABASE_URL, ConfigError, Settings, documented
from todo_api.variables import READ_ELSEWHERE, backend_name, in_memory_sqlite

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 32


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.database_url.startswith("sqlite:///")
    assert settings.auth_secret is None
    assert settings.cors_origins == ("http://localhost:3000",)
    assert settings.auto_migrate is True


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:p@db.example/app?sslmode=require",
            "BETTER_AUTH_SECRET": SECRET,
            "JWT_ISSUER": "https://app.example",
            "JWT_AUDIENCE": "https://api.example",
            "CORS_ORIGINS": "https://app.example/, http://localhost:3000",
            "AUTO_MIGRATE": "false",
            "DB_POOL_SIZE": "7",
            "DB_MAX_OVERFLOW": "3",
            "DB_POOL_TIMEOUT": "2.5",
        }
    )
    assert settings.database_url == "postgresql://u:p@db.example/app?sslmode=require"
    assert settings.auth_secret == SECRET
    assert settings.jwt_issuer == "https://app.example"
    assert settings.jwt_audience == "https://api.example"
    assert settings.cors_origins == ("https://app.example", "http://localhost:3000")
    assert settings.auto_migrate is False
    assert (settings.pool.size, settings.pool.max_overflow, settings.pool.timeout) == (7, 3, 2.5)


def test_web_concurrency_auto_is_one_process_per_usable_cpu() -> None:
    settings = Settings.from_env({"WEB_CONCURRENCY": "Auto", "PORT": "8080"})
    assert settings.web_concurrency == len(os.sched_getaffinity(0))
    assert settings.port == 8080


def test_neon_db_url_is_an_alias() -> None:
    url = "postgresql://u:p@ep-x.neon.tech/db?sslmode=require"
    assert Settings.from_env({"NEON_DB_URL": url}).database_url == url
    both = Settings.from_env({"NEON_DB_URL": url, "DATABASE_URL": "sqlite:///x.db"})
    assert both.database_url == "sqlite:///x.db"


def test_short_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        Settings.from_env({"BETTER_AUTH_SECRET": "short"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_POOL_SIZE", "many"),
        ("DB_POOL_SIZE", "0"),
        ("DB_POOL_TIMEOUT", "nan"),
        ("DB_POOL_TIMEOUT", "inf"),
        ("AUTO_MIGRATE", "perhaps"),
        # "now minus the retention" must stay a date: a million days would fail every delete.
        ("TOMBSTONE_RETENTION_DAYS", "1000000"),
        ("IDEMPOTENCY_KEY_TTL", "1e12"),
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "0"),
        ("WEB_CONCURRENCY", "0"),
        ("WEB_CONCURRENCY", "x"),
    ],
)
def test_unusable_values_are_refused_with_their_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h/db?sslmode=require", "postgresql+psycopg2://u:p@h/db?sslmode=require"),
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:///todo.db", "sqlite:///todo.db"),
    ],
)
def test_postgres_urls_use_psycopg2_and_keep_sslmode(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def shown(value: object) -> str:
    """A declared default as docs/configuration.md and `.env.example` spell it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def declared_names() -> set[str]:
    return {name for v in documented() for name in (v.name, *v.aliases)}


def documented_defaults() -> dict[str, str]:
    """docs/configuration.md's table of variables: each variable's Default cell."""
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \|([^|]*)\|", page, re.MULTILINE)
    assert len(rows) == len(dict(rows)), "a variable has two rows"
    return {name: cell.strip() for name, cell in rows}


def env_example_values() -> dict[str, str]:
    """`.env.example`: each variable's value, set or commented out."""
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    lines = re.findall(r"^#? ?([A-Z0-9_]+)=(.*)$", example, re.MULTILINE)
    assert len(lines) == len(dict(lines)), "a variable is set twice"
    return dict(lines)


def test_the_configuration_page_table_matches_the_declaration() -> None:
    table = documented_defaults()
    assert set(table) == declared_names(), set(table) ^ declared_names()
    for variable in documented():
        # A default worked out from other settings is described in words instead.
        if variable.default is not None and variable.derive is None:
            assert table[variable.name] == f"`{shown(variable.default)}`", variable.name


def test_env_example_documents_every_variable() -> None:
    example = env_example_values()
    assert set(example) == declared_names(), set(example) ^ declared_names()
    for variable in documented():
        if variable.default is not None:
            assert example[variable.name] == shown(variable.default), variable.name


def test_every_variable_the_code_reads_is_declared() -> None:
    read = set()
    for module in (ROOT / "todo_api").rglob("*.py"):
        read |= set(re.findall(r'environ\.get\("([A-Z_]+)"', module.read_text()))
    assert read <= declared_names(), read - declared_names()
    # Those read outside Settings are read, with the default declared, where the declaration says.
    for variable in READ_ELSEWHERE:
        source = (ROOT / variable.read_by).read_text(encoding="utf-8")
        assert variable.name in source, variable
        if variable.default is not None:
            assert f'"{variable.default}"' in source, variable


def test_each_variable_is_declared_once_with_a_meaning() -> None:
    names = [name for v in documented() for name in (v.name, *v.aliases)]
    assert len(names) == len(set(names))
    for variable in documented():
        assert variable.meaning.strip()
        assert "\n" not in variable.meaning


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@h/db?sslmode=require",
        "postgres://u:p@ep-x-pooler.eu.aws.neon.tech/db",
        "postgresql+psycopg2://u@h:5432/db",
        "postgres+psycopg2://h/db",
        "sqlite:///todo.db",
        "sqlite://",
        "mysql+pymysql://h/db",
        "todo.db",
        "",
    ],
)
def test_backend_name_reads_urls_as_sqlalchemy_does(url: str) -> None:
    try:
        expected = make_url(normalize_url(url)).get_backend_name()
    except ArgumentError:
        expected = None
    assert backend_name(url) == expected


IN_MEMORY = ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://", "sqlite:///"]


@pytest.mark.parametrize(
    "url",
    [
        *IN_MEMORY,
        "sqlite://?timeout=5",
        "sqlite+pysqlite:///:memory:?cache=shared",
        "sqlite:///file:tasks?mode=memory&uri=true",
        "sqlite:///file::memory:?uri=true",
        "sqlite:///file::memory:?cache=shared&uri=true",
        "sqlite:///todo.db",
        "sqlite:////var/lib/todo/todo.db",
        "sqlite:///memory.db",
        "sqlite:///file:tasks.db?mode=rwc&uri=true",
        "postgresql://u:p@h/db",
        "postgresql://u:p@h/db?mode=memory",
    ],
)
def test_in_memory_sqlite_reads_urls_as_sqlalchemy_does(url: str) -> None:
    parsed = make_url(url)
    # SQLite's own URI names too (https://sqlite.org/inmemorydb.html), which SQLAlchemy passes on.
    database = parsed.database or ""
    expected = parsed.get_backend_name() == "sqlite" and (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or parsed.query.get("mode") == "memory"
    )
    assert in_memory_sqlite(url) is expected


@pytest.mark.parametrize("url", IN_MEMORY)
@pytest.mark.parametrize("name", ["DATABASE_URL", "NEON_DB_URL"])
def test_an_in_memory_sqlite_database_is_refused_for_a_file(name: str, url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: url})
    message = str(refused.value)
    assert message.startswith("DATABASE_URL names an SQLite database in memory")
    assert message.endswith("use a file path, such as sqlite:///todo.db.")
    assert "\n" not in message


def test_any_origin_cannot_be_listed_beside_named_ones() -> None:
    with pytest.raises(ConfigError, match=r"CORS_ORIGINS=\*"):
        Settings.from_env({"CORS_ORIGINS": "*, https://app.example"})
    assert Settings.from_env({"CORS_ORIGINS": "*"}).any_origin


def test_log_format_defaults_to_the_commands_and_refuses_others() -> None:
    assert Settings.log_format_from({}, "json") == "json"
    assert Settings.log_format_from({}, "text") == "text"
    assert Settings.log_format_from({"LOG_FORMAT": " Text "}, "json") == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT must be json or text"):
        Settings.log_format_from({"LOG_FORMAT": "xml"}, "json")


def test_metrics_and_traces_are_off_unless_asked_for() -> None:
    default = Settings.from_env({})
    assert not default.metrics_enabled
    assert default.metrics_token is None
    assert default.otel_endpoint is None
    asked = Settings.from_env(
        {
            "METRICS_ENABLED": "true",
            "METRICS_TOKEN": " t0k3n ",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        }
    )
    assert asked.metrics_enabled
    assert asked.metrics_token == "t0k3n"
    assert asked.otel_endpoint == "http://collector:4318"
