"""The next occurrence of a recurring task, computed in the task's own time zone.

A rule is read from the task's current due date: the wall-clock time of that date in the
task's zone is kept, so an occurrence due at 09:00 Europe/Berlin stays at 09:00 across a
daylight-saving change. `COUNT` counts the occurrences left, this one included: the next
occurrence carries one less, and the last carries `COUNT=1`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr


def next_occurrence(rule: str, due: dt.datetime, timezone: str) -> tuple[dt.datetime, str] | None:
    """The next due date (UTC) and the rule the next occurrence carries; None once the series
    has ended (COUNT reached or the next date past UNTIL)."""
    parts = dict(part.split("=", 1) for part in rule.split(";"))
    count = parts.pop("COUNT", None)
    if count is not None and int(count) <= 1:
        return None
    until = parts.pop("UNTIL", None)
    zone = ZoneInfo(timezone)
    local = due.astimezone(zone).replace(tzinfo=None)
    unbounded = ";".join(f"{name}={value}" for name, value in parts.items())
    # Wall-clock arithmetic: the rule runs on naive local times, then each is placed in the zone.
    following = rrulestr(unbounded, dtstart=local).after(local)
    if following is None:
        return None
    next_due = following.replace(tzinfo=zone).astimezone(dt.UTC)
    if until is not None and not _until_allows(until, following, next_due):
        return None
    if until is not None:
        parts["UNTIL"] = until
    if count is not None:
        parts["COUNT"] = str(int(count) - 1)
    return next_due, join(parts)


def _until_allows(until: str, local: dt.datetime, instant: dt.datetime) -> bool:
    """UNTIL is a UTC instant (`20261231T235959Z`) or a date in the task's zone (`20261231`),
    and includes the occurrence that falls on it (RFC 5545)."""
    if until.endswith("Z"):
        limit = dt.datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        return instant <= limit
    return local.date() <= dt.datetime.strptime(until, "%Y%m%d").date()


# The order a normalised rule names its parts in.
ORDER = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY")


def join(parts: dict[str, str]) -> str:
    return ";".join(f"{name}={parts[name]}" for name in ORDER if name in parts)
