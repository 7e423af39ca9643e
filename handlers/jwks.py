"""Better Auth's public keys (JWKS): fetched with a timeout, cached, refetched sparingly."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx2
import jwt
from jwt.exceptions import PyJWKError

logger = logging.getLogger("todo_api.auth")

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
    """The token names a key that Better Auth does not publish."""


@dataclass(frozen=True)
class VerificationKey:
    key: Any
    algorithms: frozenset[str]


def _parse_key(data: Any) -> tuple[str, VerificationKey] | None:
    if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
        return None
    if data.get("use", "sig") != "sig":
        return None
    kty, crv = data.get("kty"), data.get("crv")
    algorithms = _ALGORITHMS_BY_KEY.get((kty, None if kty == "RSA" else crv))
    if algorithms is None:
        return None
    if "alg" in data:
        if data["alg"] not in algorithms:
            return None
        algorithms = frozenset({data["alg"]})
    try:
        key = jwt.PyJWK(data, algorithm=min(algorithms)).key
    except (PyJWKError, ValueError, TypeError):
        return None
    return data["kid"], VerificationKey(key, algorithms)


class JwksCache:
    def __init__(self, url: str, client: httpx2.AsyncClient, refetch_cooldown: float) -> None:
        self._url = url
        self._client = client
        self._cooldown = refetch_cooldown
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_attempt_failed = False
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str) -> VerificationKey:
        """The published key `kid`; raises UnknownKey (401) or KeysUnavailable (503)."""
        stale = self._fetched_at is None or time.monotonic() - self._fetched_at > MAX_AGE_SECONDS
        if kid not in self._keys or stale:
            await self._refresh()
        if kid in self._keys:
            return self._keys[kid]
        if self._last_attempt_failed:
            raise KeysUnavailable(retry_after=self._retry_after())
        raise UnknownKey(kid)

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
            self.fetches += 1
            try:
                response = await self._client.get(self._url)
                response.raise_for_status()
                published = response.json()["keys"]
                if not isinstance(published, list):
                    raise TypeError("keys is not a list")
            except (httpx2.HTTPError, ValueError, KeyError, TypeError) as exc:
                self._last_attempt_failed = True
                logger.warning("JWKS fetch from %s failed: %r", self._url, exc)
                return
            keys = dict(filter(None, map(_parse_key, published)))
            self._keys = keys
            self._fetched_at = now
            self._last_attempt_failed = False
            logger.info("JWKS from %s: %d usable keys", self._url, len(keys))
