"""Better Auth session tokens, checked with Better Auth itself and cached briefly."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging

import httpx2

from todo_api.auth.cache import TtlCache
from todo_api.auth.remote import RemoteError, get_json

logger = logging.getLogger("todo_api.auth")
SESSION_CHECK_FAILED = {"event": "session_check_failed"}

# A refused token is remembered this long at most, so that a user who has just signed in again
# is not kept out, while a burst of bad tokens does not become a burst of calls to Better Auth.
FAILURE_TTL_SECONDS = 3.0
MAX_SESSIONS = 10_000
# Refusals get a smaller cache of their own: a flood of made-up tokens cannot evict real users.
MAX_REFUSALS = 1_000


class SessionsUnavailable(Exception):
    """Better Auth could not be asked; this says nothing about the token."""


class SessionRejected(Exception):
    """Better Auth does not know this session (signed out, expired, or never issued)."""


class SessionIntrospector:
    def __init__(self, url: str, client: httpx2.AsyncClient, *, ttl: float, timeout: float) -> None:
        self._url = url
        self._client = client
        self._timeout = timeout
        self._valid = TtlCache[str](MAX_SESSIONS, max_lifetime=ttl)  # sha256(token) -> user id
        self._refused = TtlCache[str](MAX_REFUSALS)
        # One question to Better Auth per token at a time, however many requests carry it.
        self._asking: dict[str, asyncio.Future[str | None]] = {}

    async def subject(self, token: str) -> str:
        digest = hashlib.sha256(token.encode()).hexdigest()
        user_id = self._valid.get(digest)
        if user_id is not None:
            return user_id
        if self._refused.get(digest) is not None:
            raise SessionRejected
        asking = self._asking.get(digest)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(digest, token))
            self._asking[digest] = asking
            asking.add_done_callback(lambda _: self._asking.pop(digest, None))
        user_id = await asyncio.shield(asking)
        if user_id is None:
            raise SessionRejected
        return user_id

    async def _ask(self, digest: str, token: str) -> str | None:
        try:
            status, body = await get_json(
                self._client,
                self._url,
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {token}"},
            )
        except RemoteError as exc:
            logger.warning("session check failed: %s", exc, extra=SESSION_CHECK_FAILED)
            raise SessionsUnavailable from exc
        if status not in {200, 401, 403}:
            logger.warning(
                "session check at %s answered %s", self._url, status, extra=SESSION_CHECK_FAILED
            )
            raise SessionsUnavailable
        user = body.get("user") if isinstance(body, dict) else None
        user_id = user.get("id") if isinstance(user, dict) else None
        lifetime = _seconds_left(body.get("session") if user_id else None)
        if not isinstance(user_id, str) or not user_id or lifetime <= 0:
            self._refused.put(digest, "", FAILURE_TTL_SECONDS)
            return None
        self._valid.put(digest, user_id, lifetime)
        return user_id


def _seconds_left(session: object) -> float:
    """How long the session itself still lives; an answer must not be trusted past that."""
    expires = session.get("expiresAt") if isinstance(session, dict) else None
    if expires is None:
        return float("inf")
    try:
        at = dt.datetime.fromisoformat(str(expires))
    except ValueError:
        return float("inf")
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return (at - dt.datetime.now(dt.UTC)).total_seconds()
