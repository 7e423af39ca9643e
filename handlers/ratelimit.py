"""Rate limits: per signed-in user, and per client address for calls without a valid credential.

Fixed windows, counted in this process or, with REDIS_URL, in Redis so that several server
processes share one limit. Every answer carries the IETF `RateLimit-Policy` and `RateLimit`
headers (draft-ietf-httpapi-ratelimit-headers); a request over the limit is answered 429 with
`Retry-After`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.problems import asgi_response

logger = logging.getLogger("todo_api.ratelimit")
SCOPE_KEY = "todo_api.rate_limit"
# Windows this many behind the current one are forgotten by the in-process counter.
_KEPT_WINDOWS = 2


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
        reset = max(1, math.ceil(self.reset))
        name, quota, window = self.policy.name, self.policy.quota, self.policy.window
        headers = {
            "RateLimit-Policy": f'"{name}";q={quota};w={window}',
            "RateLimit": f'"{name}";r={remaining};t={reset}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(reset)
        return headers


class Counter(Protocol):
    async def add(self, key: str, window: int, amount: int) -> tuple[int, float]:
        """Add `amount` to `key`'s count in the current window: (new count, seconds left)."""

    async def close(self) -> None: ...


class MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}

    async def add(self, key: str, window: int, amount: int) -> tuple[int, float]:
        now = time.time()
        index = int(now // window)
        count = self._counts.get((key, index), 0) + amount
        self._counts[(key, index)] = count
        if len(self._counts) > 100_000:
            self._counts = {k: v for k, v in self._counts.items() if k[1] >= index - _KEPT_WINDOWS}
        return count, (index + 1) * window - now

    async def close(self) -> None:
        self._counts.clear()


class RedisCounter:
    """Counts in Redis, shared by every process that uses the same server."""

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)

    async def add(self, key: str, window: int, amount: int) -> tuple[int, float]:
        now = time.time()
        index = int(now // window)
        name = f"todo-api:rate:{key}:{index}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(name, amount)
            pipe.expire(name, window * _KEPT_WINDOWS)
            count, _ = await pipe.execute()
        return int(count), (index + 1) * window - now

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, counter: Counter, user: Policy, address: Policy) -> None:
        self._counter = counter
        self.user = user
        self.address = address

    async def hit(self, policy: Policy, key: str, amount: int = 1) -> Decision | None:
        """Count one request; None when the counter cannot be reached (the request passes)."""
        try:
            count, reset = await self._counter.add(f"{policy.name}:{key}", policy.window, amount)
        except Exception as exc:
            logger.warning("rate limit counter unavailable, not limiting: %r", exc)
            return None
        return Decision(policy, count, reset)

    async def peek(self, policy: Policy, key: str) -> Decision | None:
        """What counting one more request would decide, without counting it."""
        decision = await self.hit(policy, key, amount=0)
        return None if decision is None else Decision(policy, decision.count + 1, decision.reset)

    async def close(self) -> None:
        await self._counter.close()


class RateLimits:
    """ASGI middleware: limits by client address, and carries the headers of either limit.

    A request with a credential is counted for its user once the credential is verified
    (handlers.auth puts that decision into the scope); one whose credential is refused, or that
    has none, is counted for its client address, so that guessing tokens is limited too.
    """

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = (scope.get("client") or ("unknown", 0))[0]
        has_credential = "authorization" in Headers(scope=scope)
        decision: Decision | None = None
        if not has_credential:
            decision = await self.limiter.hit(self.limiter.address, address)
        else:
            # Only look: a refused credential is counted below, once it is known. An address
            # over its limit is refused whatever it sends, so that guessing credentials (each
            # session token costs a call to Better Auth) stops there.
            decision = await self.limiter.peek(self.limiter.address, address)
        if decision is not None and not decision.allowed:
            response = asgi_response(
                429, "Too many requests from this address; slow down.", decision.headers()
            )
            await response(scope, receive, send)
            return
        holder: dict[str, Decision] = {}
        scope = {**scope, SCOPE_KEY: holder}

        async def send_with_headers(message: Message) -> None:
            nonlocal decision
            if message["type"] == "http.response.start":
                if "user" in holder:
                    decision = holder["user"]
                elif has_credential and message["status"] == 401:
                    decision = await self.limiter.hit(self.limiter.address, address)
                if decision is not None:
                    headers = MutableHeaders(scope=message)
                    for name, value in decision.headers().items():
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
