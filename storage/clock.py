"""The store's clock, read in this one place: a test that needs another time sets it here."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
