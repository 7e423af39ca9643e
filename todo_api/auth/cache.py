"""The one cache of answers about credentials: tokens already verified, and Better Auth's
answers about sessions, so that a client's every request does not pay for the same check again
(a signature check was a tenth of a request's CPU; a session check is a call to Better Auth)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """At most `size` entries, each until its own lifetime ends (and never longer than
    `max_lifetime`); when full, the least recently used goes first, so memory stays bounded
    whatever the lifetimes. One clock for every entry: `clock`, monotonic unless a test says."""

    def __init__(
        self,
        size: int,
        *,
        max_lifetime: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = size
        self._max_lifetime = max_lifetime
        self._clock = clock
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, good_until = entry
        if self._clock() >= good_until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: V, lifetime: float) -> None:
        """Keep `value` for `key` for `lifetime` seconds, or `max_lifetime` if sooner."""
        self._entries[key] = (value, self._clock() + min(lifetime, self._max_lifetime))
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


def seconds_until(unix_time: int) -> float:
    """How long until a Unix time in whole seconds, such as a JWT's `exp` (which may be any
    whole number: one too large for a float is as good as never)."""
    return unix_time - time.time() if unix_time < 2**53 else math.inf
