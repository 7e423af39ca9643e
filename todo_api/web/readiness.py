"""Readiness, asked of the database at most once a second however often probes come: a load
balancer checking every replica often, or anyone flooding `/api/health/ready` without a
credential (probes are never rate-limited), costs the database one statement a second."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

FRESH_SECONDS = 1.0


class Readiness:
    def __init__(self, ping: Callable[[], None], fresh: float = FRESH_SECONDS) -> None:
        self._ping = ping
        self._fresh = fresh
        self._lock = threading.Lock()
        self._checked_at = -float("inf")
        self._failure: Exception | None = None

    def check(self) -> None:
        """Return while the database answered its last ping, raise what that ping raised
        otherwise. Pings again once the answer is `fresh` seconds old; a probe that comes
        while another pings takes the last answer rather than wait."""
        stale = time.monotonic() - self._checked_at >= self._fresh
        if stale and self._lock.acquire(blocking=self._checked_at == -float("inf")):
            try:
                self._ping()
                self._failure = None
            except Exception as exc:
                self._failure = exc
            finally:
                self._checked_at = time.monotonic()
                self._lock.release()
        failure = self._failure
        if failure is not None:
            raise failure.with_traceback(None)
