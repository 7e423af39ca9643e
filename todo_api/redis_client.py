"""Redis as this service uses it: a bounded client, and an outage that never takes a limit down.

Every use of Redis here (the rate-limit counts, the event streams' leases) is an optimisation
over what one process can do alone: while Redis fails, stalls or has no free connection, the
process does without it for a while, and says so once each way.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis.asyncio

PAUSE_AFTER_FAILURE_SECONDS = 5.0


def bounded_redis(url: str, *, max_connections: int, timeout: float) -> redis.asyncio.Redis:
    """A client whose pool holds at most `max_connections`: past them a call waits `timeout`
    for a connection, and each connect and answer waits `timeout` too."""
    import redis.asyncio

    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    return redis.asyncio.Redis(connection_pool=pool)


class Outage:
    """Whether to skip Redis now: for `pause` seconds after each failure, so that an outage
    costs a call at most one short timeout now and then rather than one each."""

    def __init__(
        self, logger: logging.Logger, doing: str, pause: float = PAUSE_AFTER_FAILURE_SECONDS
    ) -> None:
        self._logger = logger
        # What the process does on its own meanwhile, as the log says it.
        self._doing = doing
        self._pause = pause
        self._paused_until = 0.0
        self._failing = False

    def paused(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self._paused_until

    def failed(self, exc: Exception) -> None:
        self._paused_until = time.monotonic() + self._pause
        if not self._failing:
            self._failing = True
            self._logger.warning(
                "Redis failed (%s: %s): %s in this process",
                type(exc).__name__,
                exc,
                self._doing,
                extra={"event": "redis_fallback"},
            )

    def answered(self, started: float) -> None:
        """A call sent at `started` (monotonic) was answered."""
        # Only a call sent after the pause says Redis is back; one sent before it may simply
        # have got a connection in time.
        if self._failing and started >= self._paused_until:
            self._failing = False
            self._logger.warning(
                "Redis answers again: %s there", self._doing, extra={"event": "redis_back"}
            )
