"""Tokens already verified, remembered until they expire, so that a client's every request
does not pay for the same signature check again (it was a tenth of a request's CPU)."""

from __future__ import annotations

import time
from collections.abc import Callable


class VerifiedTokens:
    """The subject of each token verified lately, until the moment PyJWT would refuse it.

    Keyed by the whole token, signature included: only the very string that was verified is
    ever answered from here. Entries last at most `ttl` seconds, and at most `size` are kept
    (the oldest go first), so memory stays bounded whatever the tokens' lifetimes.
    """

    def __init__(
        self, *, ttl: float = 60.0, size: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: dict[str, tuple[str, float]] = {}

    def subject(self, token: str) -> str | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        subject, good_until = entry
        if self._clock() >= good_until:
            del self._entries[token]
            return None
        return subject

    def remember(self, token: str, subject: str, expires: float) -> None:
        """Keep `subject` for `token` until `expires` (a Unix time), or for `ttl` if sooner."""
        good_until = min(expires, self._clock() + self._ttl)
        if len(self._entries) >= self._size:
            # The oldest entry goes first (dicts keep insertion order).
            del self._entries[next(iter(self._entries))]
        self._entries[token] = (subject, good_until)
