"""Chat's own rate limit, per user: each message costs the operator money, so it holds
whether or not RATE_LIMIT_ENABLED limits the rest (the same counter, in memory or Redis)."""

from __future__ import annotations

from todo_api.web.problems import TooManyRequests
from todo_api.web.ratelimit import Policy, RateLimiter

OVER_LIMIT = "Too many chat messages from this user; wait before sending the next."


class ChatRate:
    def __init__(self, limiter: RateLimiter, policy: Policy) -> None:
        self.limiter = limiter
        self.policy = policy

    async def count(self, user: str) -> None:
        """Count one message; TooManyRequests past the user's limit."""
        decision = await self.limiter.hit(self.policy, user)
        if decision is not None and not decision.allowed:
            self.limiter.refused(self.policy)
            raise TooManyRequests(decision.headers(), OVER_LIMIT)
