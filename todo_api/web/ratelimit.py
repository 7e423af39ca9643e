"""Rate limits: per signed-in user, and per client address for calls without a valid credential.

Fixed windows, counted in this process or, with REDIS_URL, in Redis so that several server
processes share one limit. Every answer carries the IETF `RateLimit-Policy` and `RateLimit`
headers (draft-ietf-httpapi-ratelimit-headers); a request over the limit is answered 429 with
`Retry-After`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from connexion.lifecycle import ConnexionRequest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_api.auth.errors import Unauthenticated
from todo_api.metrics import Metrics
from todo_api.redis_client import Outage, bounded_redis
from todo_api.web.problems import (
    TooManyRequests,
    asgi_response,
    retry_after_header,
    retry_seconds,
)

logger = logging.getLogger("todo_api.ratelimit")
SCOPE_KEY = "todo_api.rate_limit"
ADDRESS_OVER_LIMIT = "Too many requests from this address; slow down."


@dataclass(frozen=True)
class Policy:
    name: str
    quota: int
    window: int


@dataclass(frozen=True)
class Decision:
    policy: Policy
    count: int
    reset: float  # seconds until the window ends

    @property
    def allowed(self) -> bool:
        return self.count <= self.policy.quota

    def headers(self) -> dict[str, str]:
        remaining = max(0, self.policy.quota - self.count)
        reset = retry_seconds(self.reset)
        name, quota, window = self.policy.name, self.policy.quota, self.policy.window
        headers = {
            "RateLimit-Policy": f'"{name}";q={quota};w={window}',
            "RateLimit": f'"{name}";r={remaining};t={reset}',
        }
        if not self.allowed:
            headers |= retry_after_header(self.reset)
        return headers


class Counter(Protocol):
    async def add(
        self, key: str, window: int, amount: int, at: float | None = None
    ) -> tuple[int, float]:
        """Add `amount` to `key`'s count in the window holding the Unix time `at` (now by
        default): (new count, seconds left). A window already past is left alone."""

    async def close(self) -> None: ...


class MemoryCounter:
    """Counts in this process: one table for the current window, dropped when it ends."""

    def __init__(self) -> None:
        self._window: tuple[int, int] | None = None  # (length, index)
        self._counts: dict[str, int] = {}

    def _table(self, window: int, at: float) -> dict[str, int] | None:
        """The counts of the window holding `at`, started afresh when it is new; None when a
        later window has taken its place."""
        index = int(at // window)
        if self._window is not None and self._window[0] == window and index < self._window[1]:
            return None
        if self._window != (window, index):
            self._window, self._counts = (window, index), {}
        return self._counts

    async def add(
        self, key: str, window: int, amount: int, at: float | None = None
    ) -> tuple[int, float]:
        now = time.time()
        at = now if at is None else at
        counts = self._table(window, at)
        if counts is None:
            return 0, 0.0
        count = counts.get(key, 0) + amount
        counts[key] = count
        return count, (int(at // window) + 1) * window - now

    def count(self, key: str, window: int, at: float) -> int:
        """`key`'s count in the window holding `at`, as this process knows it."""
        counts = self._table(window, at)
        return 0 if counts is None else counts.get(key, 0)

    def remember(self, key: str, window: int, at: float, count: int) -> None:
        """Raise `key`'s count to one seen elsewhere, so that counting can go on from there."""
        counts = self._table(window, at)
        if counts is not None and count > counts.get(key, 0):
            counts[key] = count

    async def close(self) -> None:
        self._counts.clear()


class RedisCounter:
    """Counts in Redis, shared by every process that uses the same server.

    When Redis fails, stalls or has no free connection, this process counts on its own for a
    while, going on from the counts Redis last gave it: the limits hold through the outage
    (each process then counts only what it serves) rather than lapse for everyone, and the
    outage costs a request at most one short timeout now and then rather than one each.
    """

    def __init__(self, url: str, *, max_connections: int, timeout: float) -> None:
        # Past `max_connections` a request waits `timeout` for a connection, then this
        # process counts it.
        self._redis = bounded_redis(url, max_connections=max_connections, timeout=timeout)
        self._timeout = timeout
        self._local = MemoryCounter()
        self._outage = Outage(logger, "counting rate limits")
        # The window whose marker this process has seen in Redis; and, once that marker was
        # found gone (Redis lost its data), the window and the keys given back their counts.
        self._marked: tuple[int, int] | None = None
        self._lost: tuple[int, int] | None = None
        self._restored: set[str] = set()

    async def add(
        self, key: str, window: int, amount: int, at: float | None = None
    ) -> tuple[int, float]:
        started = time.monotonic()
        if self._outage.paused(started):
            return await self._local.add(key, window, amount, at)
        now = time.time()
        at = now if at is None else at
        index = int(at // window)
        name = f"todo-api:rate:{key}:{index}"
        this_window = (window, index)
        try:
            # The pool's and the socket's timeouts each bound one step; this bounds them all.
            async with asyncio.timeout(self._timeout * 3):
                async with self._redis.pipeline(transaction=True) as pipe:
                    # Made by the window's first request in any process, and kept as long as
                    # its counts: found missing later, Redis has lost them.
                    pipe.set(f"todo-api:rate-window:{window}:{index}", 1, nx=True, ex=window * 2)
                    pipe.incrby(name, amount)
                    pipe.expire(name, window * 2)
                    made, count, _ = await pipe.execute()
        except Exception as exc:
            self._outage.failed(exc)
            return await self._local.add(key, window, amount, at)
        count = int(count)
        if made and self._marked == this_window:
            # Restarted empty, or failed over to a replica that had not the counts: each key
            # gets back the count this process last saw of it, so that a user over the limit
            # stays refused.
            self._lost, self._restored = this_window, set()
        self._marked = this_window
        if self._lost == this_window and key not in self._restored:
            self._restored.add(key)
            known = self._local.count(key, window, at)
            if known > 0:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(self._timeout * 3):
                        count = int(await self._redis.incrby(name, known))
        self._outage.answered(started)
        self._local.remember(key, window, at, count)
        return count, (index + 1) * window - now

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(
        self, counter: Counter, user: Policy, address: Policy, metrics: Metrics | None = None
    ) -> None:
        self._counter = counter
        self.user = user
        self.address = address
        self._metrics = metrics

    def refused(self, policy: Policy) -> None:
        """Count a request this policy refused (429)."""
        if self._metrics is not None:
            self._metrics.rate_limit_refusals.labels(policy.name).inc()

    async def hit(
        self, policy: Policy, key: str, amount: int = 1, at: float | None = None
    ) -> Decision | None:
        """Count one request (in the window holding `at`, now by default); None when the
        counter cannot be reached (the request passes)."""
        try:
            name = f"{policy.name}:{key}"
            count, reset = await self._counter.add(name, policy.window, amount, at)
        except Exception as exc:
            logger.warning(
                "rate limit counter unavailable, not limiting: %r",
                exc,
                extra={"event": "rate_limit_unavailable"},
            )
            return None
        return Decision(policy, count, reset)

    async def release(self, policy: Policy, key: str, at: float) -> None:
        """Give back a request counted at `at`, before its work, once it turns out not to
        count: in the window it was counted in, not in a later one."""
        await self.hit(policy, key, amount=-1, at=at)

    async def peek(self, policy: Policy, key: str) -> Decision | None:
        """What counting one more request would decide, without counting it."""
        decision = await self.hit(policy, key, amount=0)
        return None if decision is None else Decision(policy, decision.count + 1, decision.reset)

    async def close(self) -> None:
        await self._counter.close()


@dataclass
class CountedFor:
    """What a request with a credential was counted for: the middleware below puts it in the
    scope, and the bearer check fills it in (through `counted_as_a_guess` and `count_for_user`)."""

    credential_key: str
    user: Decision | None = None
    credential: Decision | None = None


class RateLimits:
    """ASGI middleware: limits by client address, and carries the headers of either limit.

    A request with a credential is counted for its user once the credential is verified
    (handlers.security fills in the scope's `CountedFor`). One without a credential is counted for
    its client address. A credential that was checked and refused is counted for the address
    too, in a separate count which alone can refuse credentials up front: guessing tokens stops
    there, while anonymous calls from an address never lock its signed-in users out. A
    credential that must be checked is counted there before the check (`counted_as_a_guess`),
    so concurrent guesses are refused as if they came one at a time. A credential never checked
    (an unknown route) is no guess: that request is counted as an anonymous one, when its answer
    starts. Probes (`exempt` paths) are never counted nor refused.
    """

    def __init__(
        self,
        app: ASGIApp,
        limiter: RateLimiter,
        exempt: Callable[[str, str], bool] = lambda _method, _path: False,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        has_credential = is_bearer(Headers(scope=scope).get("authorization"))
        policy = self.limiter.address
        key = f"credential:{client}" if has_credential else client
        if has_credential:
            decision = await self.limiter.peek(policy, key)
        else:
            decision = await self.limiter.hit(policy, key)
        if decision is not None and not decision.allowed:
            self.limiter.refused(policy)
            response = asgi_response(429, ADDRESS_OVER_LIMIT, decision.headers())
            await response(scope, receive, send)
            return
        tally = CountedFor(key)
        scope = {**scope, SCOPE_KEY: tally}

        async def send_with_headers(message: Message) -> None:
            nonlocal decision
            if message["type"] == "http.response.start":
                if tally.user is not None:
                    decision = tally.user
                elif tally.credential is not None:
                    decision = tally.credential
                elif has_credential:
                    decision = await self.limiter.hit(policy, client)
                if decision is not None:
                    headers = MutableHeaders(scope=message)
                    for name, value in decision.headers().items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_bearer(authorization: str | None) -> bool:
    """Whether an Authorization header carries a bearer credential, the only kind checked
    here: any other (Basic, a bare word) is no credential, and its request is anonymous."""
    return bearer_token(authorization) is not None


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer ...` header (the scheme in any case), or
    None for no header, an empty one or another scheme."""
    if authorization is None:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


@asynccontextmanager
async def counted_as_a_guess(request: ConnexionRequest) -> AsyncIterator[None]:
    """Count a credential against its address's limit before it is checked, and give the place
    back unless it is refused: concurrent guesses are refused as if they came one at a time,
    and none past the limit reaches Better Auth."""
    limiter: RateLimiter | None = request.state.rate_limiter
    tally: CountedFor | None = request.scope.get(SCOPE_KEY)
    if limiter is None or tally is None:
        yield
        return
    at = time.time()
    decision = await limiter.hit(limiter.address, tally.credential_key, at=at)
    tally.credential = decision
    if decision is not None and not decision.allowed:
        limiter.refused(limiter.address)
        raise TooManyRequests(decision.headers(), ADDRESS_OVER_LIMIT)
    refused = False
    try:
        yield
    except Unauthenticated:
        refused = True
        raise
    finally:
        # Accepted, or not checkable (an outage): either way not a guess.
        if not refused:
            await limiter.release(limiter.address, tally.credential_key, at)


async def count_for_user(request: ConnexionRequest, subject: str) -> None:
    """The per-user rate limit: only here is the user known for certain."""
    limiter: RateLimiter | None = request.state.rate_limiter
    tally: CountedFor | None = request.scope.get(SCOPE_KEY)
    if limiter is None or tally is None:
        return
    decision = await limiter.hit(limiter.user, subject)
    if decision is not None:
        tally.user = decision
        if not decision.allowed:
            limiter.refused(limiter.user)
            raise TooManyRequests(decision.headers())
