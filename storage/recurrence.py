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

# How far ahead the next occurrence may lie; none within it ends the series.
HORIZON_YEARS = 100
# The latest year a search starts in: dateutil searches on to 9999, at least the horizon.
_SHIFTED_TO = 9999 - HORIZON_YEARS


def next_occurrence(rule: str, due: dt.datetime, timezone: str) -> tuple[dt.datetime, str] | None:
    """The next due date (UTC) and the rule the next occurrence carries; None once the series
    has ended (COUNT reached, the next date past UNTIL, or none within HORIZON_YEARS)."""
    parts = dict(part.split("=", 1) for part in rule.split(";"))
    count = parts.pop("COUNT", None)
    if count is not None and int(count) <= 1:
        return None
    until = parts.pop("UNTIL", None)
    zone = ZoneInfo(timezone)
    try:
        local = due.astimezone(zone).replace(tzinfo=None)
        unbounded = ";".join(f"{name}={value}" for name, value in parts.items())
        # Wall-clock arithmetic: the rule runs on naive local times, each then placed in the
        # zone. dateutil looks for a next date until year 9999, and a rule that never meets
        # again (a fifth Monday in months that have none, a weekday a seven-day interval never
        # lands on) would be stepped through to there inside a write (0.5 s of CPU). So the
        # search runs shifted by whole 400-year Gregorian cycles, which keep every weekday
        # and month length, to within a few centuries of year 9999, and is shifted back.
        shift = (_SHIFTED_TO - local.year) // 400 * 400
        start = local.replace(year=local.year + shift)
        found = rrulestr(unbounded, dtstart=start).after(start)
        if found is None or found.year - shift > local.year + HORIZON_YEARS:
            return None
        following = found.replace(year=found.year - shift)
        next_due = following.replace(tzinfo=zone).astimezone(dt.UTC)
    except (OverflowError, ValueError):
        # Near year 1 or 9999: no next date.
        return None
    if until is not None and not _until_allows(until, following, next_due):
        return None
    if until is not None:
        parts["UNTIL"] = until
    if count is not None:
        parts["COUNT"] = str(int(count) - 1)
    return next_due, join(parts)


def parse_until(until: str) -> dt.datetime | dt.date:
    """UNTIL as a UTC instant (`20261231T235959Z`) or a date in the task's zone (`20261231`);
    ValueError for neither."""
    if until.endswith("Z"):
        return dt.datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return dt.datetime.strptime(until, "%Y%m%d").date()


def _until_allows(until: str, local: dt.datetime, instant: dt.datetime) -> bool:
    """Whether UNTIL includes an occurrence (the one that falls on it too, RFC 5545)."""
    limit = parse_until(until)
    if isinstance(limit, dt.datetime):
        return instant <= limit
    return local.date() <= limit


# The order a normalised rule names its parts in.
ORDER = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY")


def join(parts: dict[str, str]) -> str:
    return ";".join(f"{name}={parts[name]}" for name in ORDER if name in parts)
