"""Task fields whose wire form is richer than a JSON Schema can check: a recurrence rule, a
time zone, a duration and tags, read as the spec's TaskInput states them and normalised."""

from __future__ import annotations

import datetime as dt
import importlib.resources
import re
import unicodedata
from functools import cache
from typing import Any

from dateutil.rrule import rrulestr

from storage.recurrence import join, parse_until
from todo_api.contract import python_regex, spec, task_properties
from todo_api.usecases.errors import InvalidInput

_RECURRENCE = "#/recurrence"
# Ordinals in BYDAY are for the days of a month or a year, not of a week (RFC 5545 3.3.10).
_ORDINALS_ALLOWED = {"MONTHLY", "YEARLY"}


def recurrence(text: str) -> str:
    """The rule normalised (upper case, parts in one order, no INTERVAL=1); InvalidInput naming
    the first part outside the spec's subset."""
    rule = text.strip().upper().removeprefix("RRULE:")
    parts: dict[str, str] = {}
    for part in rule.split(";"):
        name, equals, value = part.partition("=")
        if not equals or name not in _parts():
            _refuse(f"{part!r} is not one of the parts {', '.join(_parts())}")
        if name in parts:
            _refuse(f"{name} is given twice")
        if not _parts()[name].search(value):
            _refuse(f"{part!r} is not a valid {name}")
        parts[name] = value
    if "FREQ" not in parts:
        _refuse("FREQ is required")
    if "COUNT" in parts and "UNTIL" in parts:
        _refuse("UNTIL may not be given with COUNT")
    ordinal = any(day[0] in "+-0123456789" for day in parts.get("BYDAY", "").split(",") if day)
    if ordinal and parts["FREQ"] not in _ORDINALS_ALLOWED:
        _refuse(f"BYDAY with an ordinal needs FREQ=MONTHLY or YEARLY, not {parts['FREQ']}")
    if ordinal and "BYMONTHDAY" in parts:
        # Such pairs can never meet (the fifth Monday on the 1st), and looking for the next
        # occurrence of one would step through every month to year 9999 (0.4 s of CPU).
        _refuse("BYMONTHDAY may not be given with a BYDAY ordinal")
    if parts["FREQ"] == "WEEKLY" and "BYMONTHDAY" in parts:
        _refuse("BYMONTHDAY may not be given with FREQ=WEEKLY")
    if parts.get("INTERVAL") == "1":
        del parts["INTERVAL"]
    normalised = join(parts)
    if "UNTIL" in parts:
        try:
            parse_until(parts["UNTIL"])
        except ValueError:
            _refuse(f"UNTIL={parts['UNTIL']} is not a date")
    try:
        # dateutil's own reading: what computes the occurrences must accept the rule too.
        rrulestr(normalised, dtstart=dt.datetime(2026, 1, 1), ignoretz=True)
    except ValueError as exc:
        _refuse(str(exc))
    return normalised


def tag(text: str, pointer: str | None = None) -> str:
    """A tag as the spec's Tag states it is read: in NFC, trimmed. With a `pointer` (a tag to
    store), one longer than the spec's `maxLength` in NFC is InvalidInput."""
    normal = unicodedata.normalize("NFC", text).strip()
    if pointer is not None and len(normal) > _tag_length():
        detail = f"is longer than {_tag_length()} characters in Unicode NFC"
        raise InvalidInput([{"pointer": pointer, "detail": detail}])
    return normal


def tags(texts: list[str]) -> list[str]:
    """Each tag read as `tag` reads it, once, in its first place."""
    return list(dict.fromkeys(tag(text, f"#/tags/{i}") for i, text in enumerate(texts)))


def timezone(name: str) -> str:
    if name not in _zones():
        raise InvalidInput(
            [{"pointer": "#/timezone", "detail": f"{name!r} is not an IANA time zone name"}]
        )
    return name


def duration(text: str) -> dt.timedelta:
    """An ISO 8601 duration that matched the spec's `remind_before` pattern, at most the
    spec's `x-maximum`."""
    value = _parse_duration(text)
    if value > _longest_duration():
        detail = f"{text} is longer than {_remind_before()['x-maximum']}"
        raise InvalidInput([{"pointer": "#/remind_before", "detail": detail}])
    return value


def _parse_duration(text: str) -> dt.timedelta:
    match = _duration_pattern().search(text)
    assert match is not None  # the request was validated against the same pattern
    weeks, days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return dt.timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)


def _refuse(detail: str) -> None:
    raise InvalidInput([{"pointer": _RECURRENCE, "detail": detail}])


@cache
def _tag_length() -> int:
    length: int = spec()["components"]["schemas"]["Tag"]["maxLength"]
    return length


@cache
def _parts() -> dict[str, re.Pattern[str]]:
    stated: dict[str, str] = task_properties()["recurrence"]["x-rrule-parts"]
    return {name: python_regex(pattern) for name, pattern in stated.items()}


def _remind_before() -> dict[str, Any]:
    return task_properties()["remind_before"]


@cache
def _duration_pattern() -> re.Pattern[str]:
    return python_regex(_remind_before()["pattern"])


@cache
def _longest_duration() -> dt.timedelta:
    return _parse_duration(_remind_before()["x-maximum"])


@cache
def _zones() -> frozenset[str]:
    # The tzdata package's list: the IANA names, the same on every machine, without a
    # system's own entries such as `localtime` (which names whatever the server runs in).
    names = importlib.resources.files("tzdata").joinpath("zones").read_text().split()
    return frozenset(names) - {"Factory"}
