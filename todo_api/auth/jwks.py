"""Better Auth's public keys (JWKS): fetched with a timeout, cached, refetched sparingly."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt

from todo_api.auth.remote import RemoteError, get_json
from todo_api.metrics import Metrics

logger = logging.getLogger("todo_api.auth")
FETCH_FAILED = {"event": "jwks_fetch_failed"}

# The algorithms Better Auth's jwt() plugin can be configured for, each bound to the one key
# type it may be verified with (RFC 8725 section 3.1): a token's `alg` never picks the key type.
_ALGORITHMS_BY_KEY: dict[tuple[str, str | None], frozenset[str]] = {
    ("OKP", "Ed25519"): frozenset({"EdDSA"}),
    ("EC", "P-256"): frozenset({"ES256"}),
    ("EC", "P-521"): frozenset({"ES512"}),
    ("RSA", None): frozenset({"RS256", "PS256"}),
}
ASYMMETRIC_ALGORITHMS = frozenset().union(*_ALGORITHMS_BY_KEY.values())
# Known keys are checked against Better Auth again after this long, to notice removed keys.
MAX_AGE_SECONDS = 600.0


class KeysUnavailable(Exception):
    """No usable key: Better Auth could not be reached and nothing cached fits."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("the signing keys cannot be fetched")
        self.retry_after = retry_after


class UnknownKey(LookupError):
    """The token names a key (or a key and algorithm) that Better Auth does not publish."""


@dataclass(frozen=True)
class VerificationKey:
    key: Any
    algorithms: frozenset[str]


def _parse_key(data: Any) -> tuple[str, VerificationKey] | None:
    """A published signing key this service can use, or None for anything else."""
    if not isinstance(data, dict):
        return None
    kid, kty, crv, alg = (data.get(name) for name in ("kid", "kty", "crv", "alg"))
    if not isinstance(kid, str) or not isinstance(kty, str) or data.get("use", "sig") != "sig":
        return None
    if not isinstance(crv, str | None) or not isinstance(alg, str | None):
        return None
    algorithms = _ALGORITHMS_BY_KEY.get((kty, None if kty == "RSA" else crv))
    if algorithms is None:
        return None
    if alg is not None:
        if alg not in algorithms:
            return None
        algorithms = frozenset({alg})
    try:
        key = jwt.PyJWK(data, algorithm=min(algorithms)).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    return kid, VerificationKey(key, algorithms)


class JwksCache:
    def __init__(
        self,
        url: str,
        client: httpx2.AsyncClient,
        *,
        refetch_cooldown: float,
        timeout: float,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._url = url
        self._client = client
        self._cooldown = refetch_cooldown
        self._timeout = timeout
        self._keys: dict[str, list[VerificationKey]] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_attempt_failed = False
        self._lock = asyncio.Lock()

    async def key(self, kid: str, algorithm: str) -> VerificationKey:
        """The published key `kid` for `algorithm`; raises UnknownKey (401) or
        KeysUnavailable (503)."""
        found = self._find(kid, algorithm)
        stale = self._fetched_at is None or time.monotonic() - self._fetched_at > MAX_AGE_SECONDS
        # A known key is served from the cache while someone else refreshes it.
        if found is None or (stale and not self._lock.locked()):
            await self._refresh()
            # A fresh key set is the truth (a withdrawn key is gone); a failed fetch is not.
            if not self._last_attempt_failed:
                found = self._find(kid, algorithm)
        if found is not None:
            return found
        if self._last_attempt_failed:
            raise KeysUnavailable(retry_after=self._retry_after())
        raise UnknownKey(kid)

    def is_current(self, kid: str, algorithm: str, key: VerificationKey) -> bool:
        """Whether `key` is still what a token of `kid` and `algorithm` would be checked with,
        from a key set fresh enough to serve without a refresh. Every refresh makes new key
        objects, so a key from before one is never current."""
        fresh = (
            self._fetched_at is not None and time.monotonic() - self._fetched_at <= MAX_AGE_SECONDS
        )
        return fresh and self._find(kid, algorithm) is key

    def _find(self, kid: str, algorithm: str) -> VerificationKey | None:
        # Two keys may share a kid; the token's alg picks among keys of its own type only.
        return next((k for k in self._keys.get(kid, ()) if algorithm in k.algorithms), None)

    def _retry_after(self) -> float:
        if self._attempted_at is None:
            return self._cooldown
        return max(1.0, self._cooldown - (time.monotonic() - self._attempted_at))

    async def _refresh(self) -> None:
        async with self._lock:
            # An unknown kid refetches at most once per cool-down, whatever the request rate.
            now = time.monotonic()
            if self._attempted_at is not None and now - self._attempted_at < self._cooldown:
                return
            self._attempted_at = now
            # Failed until proven otherwise, so a cancelled fetch does not pass for a success.
            self._last_attempt_failed = True
            try:
                status, body = await get_json(self._client, self._url, timeout=self._timeout)
            except RemoteError as exc:
                self._count("failed")
                logger.warning("JWKS fetch failed: %s", exc, extra=FETCH_FAILED)
                return
            published = body.get("keys") if isinstance(body, dict) else None
            if status != 200 or not isinstance(published, list):
                self._count("failed")
                logger.warning(
                    "JWKS fetch from %s answered %s without keys",
                    self._url,
                    status,
                    extra=FETCH_FAILED,
                )
                return
            keys: dict[str, list[VerificationKey]] = defaultdict(list)
            for kid, key in filter(None, map(_parse_key, published)):
                keys[kid].append(key)
            self._keys = dict(keys)
            self._fetched_at = now
            self._last_attempt_failed = False
            self._count("ok")
            logger.info(
                "JWKS from %s: %d usable of %d keys",
                self._url,
                len(keys),
                len(published),
                extra={"event": "jwks_refreshed"},
            )

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.jwks_fetches.labels(outcome).inc()
