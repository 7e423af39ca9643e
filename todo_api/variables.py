"""Environment variables declared once: each setting's variable, how its text is read, its
default, its bounds and its meaning sit on the dataclass field that holds it (`setting`), and
reading, checking and the documentation tests are derived from that field. The few variables
no settings field holds (the log format, tracing's, the tests') are declared here as well."""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from starlette.config import Config

from todo_api.logs import LOG_FORMATS

T = TypeVar("T")
# How a variable's text becomes its value: given the variable's name (for the message) and its
# text, stripped and never empty; raises ConfigError for text it cannot use.
Parse = Callable[[str, str], T]
# Where a field keeps its Variable in dataclasses.Field.metadata.
KEY = "todo_api.variable"


class ConfigError(ValueError):
    """A setting that is missing or unusable; the message says which and why."""


@dataclass(frozen=True)
class Variable:
    """One environment variable: the single statement of its name, reading, default, bounds and
    meaning. `least`, `most`, `shortest` and `choices` are checked on every value, read or given
    as a keyword argument; `parse` only sees text from the environment."""

    name: str
    parse: Parse[Any]
    default: Any
    meaning: str
    # Read in turn when the variable itself is unset or empty.
    aliases: tuple[str, ...] = ()
    least: float | None = None
    most: float | None = None
    shortest: int | None = None
    choices: tuple[str, ...] = ()
    # Words the bound messages use after the number, and a parenthesis they end with.
    unit: str = ""
    hint: str = ""
    # When the variable is unset, a default worked out from the fields declared before it.
    derive: Callable[[Mapping[str, Any]], Any] | None = None
    # Set for a variable that no Settings field holds: the file that reads it.
    read_by: str = ""

    def read(self, environ: Mapping[str, str] | Config) -> Any:
        """The variable's value from `environ`, or None when it (and each alias) is unset."""
        # Starlette's Config only looks the text up: its casts would replace our messages.
        config = environ if isinstance(environ, Config) else Config(environ=environ)
        for name in (self.name, *self.aliases):
            raw = (config(name, default=None) or "").strip()
            if raw:
                return self.parse(self.name, raw)
        return None

    def check(self, value: Any) -> None:
        """Raise ConfigError for a value outside this variable's bounds."""
        if value is None:
            return
        if self.shortest is not None and len(value) < self.shortest:
            raise ConfigError(
                f"{self.name} must be at least {self.shortest} characters long{self.hint}."
            )
        if self.choices and value not in self.choices:
            raise ConfigError(
                f"{self.name} must be one of {', '.join(self.choices)}; not {value!r}."
            )
        unit = f" {self.unit}" if self.unit else ""
        if self.least is not None and self.most is not None:
            if not self.least <= value <= self.most:
                raise ConfigError(
                    f"{self.name} must be from {self.least} to {self.most}{unit}, not {value:g}."
                )
        elif self.most is not None and value > self.most:
            raise ConfigError(f"{self.name} must be at most {self.most}{unit}{self.hint}.")


def setting(
    name: str,
    parse: Parse[T],
    default: T,
    meaning: str,
    *,
    aliases: tuple[str, ...] = (),
    least: float | None = None,
    most: float | None = None,
    shortest: int | None = None,
    choices: tuple[str, ...] = (),
    unit: str = "",
    hint: str = "",
    derive: Callable[[Mapping[str, Any]], T] | None = None,
    secret: bool = False,
) -> T:
    """A dataclass field read from the environment variable `name`; a `secret` one is left
    out of the settings' repr, so that no log line or traceback can carry it."""
    variable = Variable(
        name=name,
        parse=parse,
        default=default,
        meaning=meaning,
        aliases=aliases,
        least=least,
        most=most,
        shortest=shortest,
        choices=choices,
        unit=unit,
        hint=hint,
        derive=derive,
    )
    return field(default=default, metadata={KEY: variable}, repr=not secret)


def variable_of(cls: type, name: str) -> Variable:
    """The Variable declared on `cls`'s field `name`."""
    found: Variable = next(f for f in fields(cls) if f.name == name).metadata[KEY]
    return found


def read_fields(cls: type, environ: Mapping[str, str] | Config) -> dict[str, Any]:
    """Keyword arguments for `cls` from `environ`: each declared field that is set (or derived),
    and each field whose default is a dataclass of declared fields, read the same way."""
    values: dict[str, Any] = {}
    # Each declared field so far, read or defaulted: what a derived default is worked out from.
    known: dict[str, Any] = {}
    config = environ if isinstance(environ, Config) else Config(environ=environ)
    for item in fields(cls):
        variable = item.metadata.get(KEY)
        if variable is None:
            nested = item.default_factory
            if isinstance(nested, type) and is_dataclass(nested):
                values[item.name] = nested(**read_fields(nested, config))
            continue
        value = variable.read(config)
        if value is None and variable.derive is not None:
            value = variable.derive(known)
        if value is not None:
            values[item.name] = value
        known[item.name] = variable.default if value is None else value
    return values


def check_fields(instance: Any) -> None:
    """Hold each declared field of a dataclass instance to its variable's bounds."""
    for item in fields(instance):
        variable = item.metadata.get(KEY)
        if variable is not None:
            variable.check(getattr(instance, item.name))


def declared(cls: type) -> Iterator[Variable]:
    """Every variable `cls` reads, its nested dataclasses' too, in field order."""
    for item in fields(cls):
        variable = item.metadata.get(KEY)
        if variable is not None:
            yield variable
        elif isinstance(item.default_factory, type) and is_dataclass(item.default_factory):
            yield from declared(item.default_factory)


def text(name: str, raw: str) -> str:
    return raw


def flag(name: str, raw: str) -> bool:
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}.")


def _positive(name: str, raw: str, kind: Callable[[str], float]) -> float:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}.") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, not {raw!r}.")
    return value


def count(name: str, raw: str) -> int:
    """A positive whole number."""
    return int(_positive(name, raw, int))


def whole(name: str, raw: str) -> int:
    """A whole number, its bounds the field's."""
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None


def processes(name: str, raw: str) -> int:
    """A number of server processes, or `auto`: one per CPU this process may use."""
    if raw.lower() == "auto":
        return usable_cpus()
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number or auto, not {raw!r}.") from None


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity, which a container's cpuset narrows,
    rather than the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def amount(name: str, raw: str) -> float:
    """A positive finite number, such as seconds."""
    return _positive(name, raw, float)


def lowered(name: str, raw: str) -> str:
    return raw.lower()


def resource_url(name: str, raw: str) -> str:
    """An absolute http(s) URL without a fragment (RFC 8707 section 2), kept as written: a
    token's `aud` must carry this very string."""
    try:
        parts = urlsplit(raw)
        usable = parts.scheme in {"http", "https"} and bool(parts.hostname) and "#" not in raw
    except ValueError:
        usable = False
    if not usable:
        raise ConfigError(
            f"{name} must be an absolute http(s) URL without a fragment, not {raw!r}."
        )
    return raw


def base_url(name: str, raw: str) -> str:
    # Endpoints are joined onto it with a slash of their own.
    return raw.rstrip("/")


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


def in_memory_sqlite(url: str) -> bool:
    """Whether a URL names an SQLite database in memory, as SQLAlchemy's SQLite dialect takes
    it: no path (`sqlite://`), the path `:memory:`, SQLite's URI form of it (`file::memory:`),
    or `?mode=memory`."""
    if backend_name(url) != "sqlite":
        return False
    place, _, query = url.split("://", 1)[1].partition("?")
    database = place.partition("/")[2]
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or parse_qs(query).get("mode") == ["memory"]
    )


def persistent_database_url(name: str, raw: str) -> str:
    # The migrations would make the tables in one connection's database; requests, on others,
    # would find none.
    if in_memory_sqlite(raw):
        raise ConfigError(
            f"{name} names an SQLite database in memory, which each connection opens empty and "
            "which ends with the process: use a file path, such as sqlite:///todo.db."
        )
    return raw


def origins(name: str, raw: str) -> tuple[str, ...]:
    """A comma list; browsers send an origin without a trailing slash."""
    return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


def log_level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(f"{name} must be one of DEBUG, INFO, WARNING, ERROR; not {level!r}.")
    return level


def log_format(name: str, raw: str) -> str:
    value = raw.lower()
    if value not in LOG_FORMATS:
        raise ConfigError(f"{name} must be json or text; not {value!r}.")
    return value


# Variables no Settings field holds, declared here all the same so that docs/configuration.md and
# `.env.example` are held to one list; `read_by` names the file that reads each.
# Read by Settings.log_format_from, whose default is the command's.
LOG_FORMAT = Variable(
    "LOG_FORMAT", log_format, None, "`json` or `text` log lines", read_by="todo_api/settings.py"
)
READ_ELSEWHERE = (
    LOG_FORMAT,
    Variable(
        "OTEL_SERVICE_NAME",
        text,
        "todo-api",
        "The service's name in traces",
        read_by="todo_api/web/tracing.py",
    ),
    Variable(
        "TEST_DATABASE_URL",
        text,
        None,
        "Tests only: a PostgreSQL server to run the suite on",
        read_by="tests/conftest.py",
    ),
    Variable(
        "POSTGRES_PASSWORD",
        text,
        None,
        "compose.yaml only: the password of its PostgreSQL",
        read_by="compose.yaml",
    ),
)
