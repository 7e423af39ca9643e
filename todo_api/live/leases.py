"""STREAMS_PER_USER across server processes: with REDIS_URL, each open stream holds a lease.

A user's leases are one sorted set in Redis: a member per open stream (a random id), scored by
when its lease runs out, in Redis's own clock, so that processes need not agree on the time.
Opening a stream drops the leases that ran out, counts the others and adds one if there is
room, all in one script, so that two processes cannot both take the last place. Each process
renews the leases of its open streams every third of a lease's length and removes a stream's
lease when it closes; a process that dies leaves leases that run out by themselves.

Redis failing never refuses a stream: while it fails, stalls or has no free connection, a
process grants leases on its own for a while (each process then bounds only its own streams,
by Wakeups' local bound), logs the switch once each way, and records the leases it granted
meanwhile at the first renewal Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time

from todo_api.redis_client import PAUSE_AFTER_FAILURE_SECONDS, Outage, bounded_redis

logger = logging.getLogger("todo_api.live")

# How long a lease lasts unless renewed: how long a dead process's streams still count.
LEASE_SECONDS = 60.0
KEY_PREFIX = "todo-api:streams:"

# KEYS[1]: the user's leases. ARGV: the bound, the new lease's id, a lease's length in ms.
ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local length = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + length, ARGV[2])
redis.call('PEXPIRE', KEYS[1], length)
return 1
"""

# KEYS: users' leases. ARGV: a lease's length in ms, then for each key how many of its leases
# follow and their ids. A lease is added if it is missing: one granted while Redis was away
# counts from now on.
RENEW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local length = tonumber(ARGV[1])
local at = 2
for k = 1, #KEYS do
  local count = tonumber(ARGV[at])
  for i = at + 1, at + count do
    redis.call('ZADD', KEYS[k], now + length, ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[k], length)
  at = at + count + 1
end
return #KEYS
"""


def leases_key(user_id: str) -> str:
    return f"{KEY_PREFIX}{user_id}"


class StreamLeases:
    """The leases of this process's open streams, at most `per_user` for one user in all the
    processes that share the Redis at `url`."""

    def __init__(
        self,
        url: str,
        *,
        per_user: int,
        max_connections: int,
        timeout: float,
        lease_seconds: float = LEASE_SECONDS,
        pause_after_failure: float = PAUSE_AFTER_FAILURE_SECONDS,
    ) -> None:
        # Past `max_connections` an open waits `timeout` for a connection, and then the lease
        # is granted here.
        self._redis = bounded_redis(url, max_connections=max_connections, timeout=timeout)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._renew = self._redis.register_script(RENEW)
        self.per_user = per_user
        self._timeout = timeout
        self._length_ms = max(1, round(lease_seconds * 1000))
        self._lease_seconds = lease_seconds
        self._outage = Outage(logger, "bounding event streams per user", pause_after_failure)
        # user -> the ids of this process's leases: what the renewals renew.
        self._held: dict[str, set[str]] = {}
        # A renewal and a removal never interleave: a renewal that read a lease before its
        # stream closed would add it back after the removal, for a whole lease's length.
        self._writing = asyncio.Lock()
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self, user_id: str) -> str | None:
        """A lease for a new stream of `user_id`: its id, or None when the user already has
        `per_user` streams open across the processes."""
        lease = secrets.token_hex(12)
        started = time.monotonic()
        if not self._outage.paused(started):
            try:
                # The pool's and the socket's timeouts each bound one step; this bounds them all.
                async with asyncio.timeout(self._timeout * 3):
                    granted = await self._acquire(
                        keys=[leases_key(user_id)],
                        args=[self.per_user, lease, self._length_ms],
                    )
            except Exception as exc:
                self._outage.failed(exc)
            else:
                self._outage.answered(started)
                if not granted:
                    return None
        self._held.setdefault(user_id, set()).add(lease)
        return lease

    async def release(self, user_id: str, lease: str) -> None:
        """The stream holding `lease` closed. Never raises: a lease that cannot be removed
        now runs out by itself."""
        held = self._held.get(user_id)
        if held is not None:
            held.discard(lease)
            if not held:
                del self._held[user_id]
        if self._outage.paused():
            return
        try:
            async with self._writing, asyncio.timeout(self._timeout * 3):
                await self._redis.zrem(leases_key(user_id), lease)
        except Exception as exc:
            # Paused like any other call: closing many streams in an outage (a shutdown) costs
            # one timeout, not one each.
            self._outage.failed(exc)

    async def renew(self) -> None:
        """Renew every lease this process holds (and record those granted without Redis)."""
        async with self._writing:
            held = {user: sorted(ids) for user, ids in self._held.items() if ids}
            started = time.monotonic()
            if not held or self._outage.paused(started):
                return
            args: list[str | int] = [self._length_ms]
            for ids in held.values():
                args += [len(ids), *ids]
            try:
                async with asyncio.timeout(self._timeout * 3):
                    await self._renew(keys=[leases_key(user) for user in held], args=args)
            except Exception as exc:
                self._outage.failed(exc)
                return
            self._outage.answered(started)

    def start(self) -> None:
        """Renew, every third of a lease's length, until `close`."""
        self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            await self.renew()

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        for user_id, ids in list(self._held.items()):
            for lease in list(ids):
                await self.release(user_id, lease)
        await self._redis.aclose()
