"""The Redis the tests share (db 15 unless TEST_REDIS_URL says otherwise), and a skip for the
tests that need it where none answers: CI has one, a newcomer's machine may not."""

from __future__ import annotations

import os

import pytest
import redis

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not redis_answers(), reason=f"needs Redis at {REDIS_URL}")
