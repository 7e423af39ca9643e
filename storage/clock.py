"""The task store's clock: every unit of work reads it here, so a test that needs another time
sets it here (tickets, reminders and notifications read their own)."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
