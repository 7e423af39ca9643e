"""Better Auth session tokens, checked with Better Auth itself and cached briefly."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections import OrderedDict

import httpx2

logger = logging.getLogger("todo_api.auth")

# A refused token is remembered this long at most, so that a user who has just signed in again
# is not kept out, while a burst of bad tokens does not become a burst of calls to Better Auth.
FAILURE_TTL_SECONDS = 3.0
MAX_ENTRIES = 10_000


class SessionsUnavailable(Exception):
    """Better Auth could not be asked; this says nothing about the token."""


class SessionRejected(Exception):
    """Better Auth does not know this session (signed out, expired, or never issued)."""


class SessionIntrospector:
    def __init__(self, url: str, client: httpx2.AsyncClient, ttl: float) -> None:
        self._url = url
        self._client = client
        self._ttl = ttl
        # sha256(token) -> (user id or None for a refusal, monotonic expiry)
        self._cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self.calls = 0

    async def subject(self, token: str) -> str:
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            if cached[0] is None:
                raise SessionRejected
            return cached[0]
        user_id, lifetime = await self._ask(token)
        self._remember(digest, user_id, lifetime)
        if user_id is None:
            raise SessionRejected
        return user_id

    async def _ask(self, token: str) -> tuple[str | None, float]:
        self.calls += 1
        try:
            response = await self._client.get(
                self._url, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx2.HTTPError as exc:
            logger.warning("session check at %s failed: %r", self._url, exc)
            raise SessionsUnavailable from exc
        if response.status_code in {401, 403}:
            return None, FAILURE_TTL_SECONDS
        if response.status_code != 200:
            logger.warning("session check at %s answered %s", self._url, response.status_code)
            raise SessionsUnavailable
        try:
            body = response.json()
        except ValueError as exc:
            raise SessionsUnavailable from exc
        user = body.get("user") if isinstance(body, dict) else None
        user_id = user.get("id") if isinstance(user, dict) else None
        if not isinstance(user_id, str) or not user_id:
            return None, FAILURE_TTL_SECONDS
        return user_id, min(self._ttl, _seconds_left(body.get("session")))

    def _remember(self, digest: str, user_id: str | None, lifetime: float) -> None:
        self._cache[digest] = (user_id, time.monotonic() + lifetime)
        self._cache.move_to_end(digest)
        while len(self._cache) > MAX_ENTRIES:
            self._cache.popitem(last=False)


def _seconds_left(session: object) -> float:
    """How long the session itself still lives (a cached answer must not outlive it)."""
    expires = session.get("expiresAt") if isinstance(session, dict) else None
    try:
        at = dt.datetime.fromisoformat(str(expires))
    except ValueError:
        return float("inf")
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return max(0.0, (at - dt.datetime.now(dt.UTC)).total_seconds())
