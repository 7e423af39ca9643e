"""Rate limits per user and per client address, in process or shared through Redis."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx2
import pytest
import redis
from starlette.testclient import TestClient

from tests.conftest import SECRET, Client, bearer, make_token
from tests.redis_service import REDIS_URL, needs_redis
from tests.tcp_proxy import TcpProxy
from todo_api.web.ratelimit import MemoryCounter

POLICY = re.compile(r'^"(?P<name>\w+)";q=(?P<q>\d+);w=(?P<w>\d+)$')
STATE = re.compile(r'^"(?P<name>\w+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


def user() -> dict[str, str]:
    """A user of their own, so that no other test's count (in a shared Redis) matters."""
    return bearer(make_token(f"u-{uuid.uuid4().hex[:12]}", iss=None, aud=None))


WINDOW = 86_400


def limited(serve: Client, **settings: object) -> TestClient:
    defaults: dict[str, object] = {
        "auth_secret": SECRET,
        "rate_limit_per_user": 5,
        "rate_limit_per_address": 3,
        # Windows are aligned to the clock: a short one could end mid-test and start the
        # counts afresh. A day's ends only at midnight UTC.
        "rate_limit_window": WINDOW,
    }
    if settings.get("redis_url") == REDIS_URL:
        # Every test client calls from one address ("testclient"), whose counts in a shared
        # Redis would outlive the test, and the run, for the rest of the day's window.
        server = redis.Redis.from_url(REDIS_URL)
        stale = list(server.scan_iter("todo-api:rate:address:*testclient:*"))
        if stale:
            server.delete(*stale)
    return serve(**(defaults | settings))


def state(response: httpx2.Response) -> tuple[str, int, int, int]:
    policy = POLICY.match(response.headers["RateLimit-Policy"])
    current = STATE.match(response.headers["RateLimit"])
    assert policy, response.headers["RateLimit-Policy"]
    assert current, response.headers["RateLimit"]
    assert policy["name"] == current["name"]
    return policy["name"], int(policy["q"]), int(current["r"]), int(current["t"])


def test_every_answer_carries_the_limit(serve: Client) -> None:
    api = limited(serve)
    alice = user()
    name, quota, remaining, reset = state(api.get("/api/tasks", headers=alice))
    assert (name, quota, remaining) == ("user", 5, 4)
    assert 1 <= reset <= WINDOW
    assert state(api.get("/api/tasks/99", headers=alice))[:3] == ("user", 5, 3)  # a 404 counts
    assert state(api.get("/api/nowhere"))[:3] == ("address", 3, 2)
    assert "RateLimit" not in api.get("/api/health").headers  # probes are not counted


def test_a_user_over_the_limit_gets_429(serve: Client) -> None:
    api = limited(serve)
    alice, bob = user(), user()
    for _ in range(5):
        assert api.get("/api/tasks", headers=alice).status_code == 200
    refused = api.post("/api/tasks", json={"title": "x"}, headers=alice)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    assert state(refused)[2] == 0
    assert api.get("/api/tasks", headers=bob).status_code == 200  # a count of their own


def test_the_count_is_per_window(serve: Client) -> None:
    api = limited(serve, rate_limit_per_user=2, rate_limit_window=1)
    alice = user()
    # Five calls over a quota of two: should a window end among them, one of the two windows
    # still gets three. (With three calls, 2 + 1 could straddle an end and all pass.)
    statuses = [api.get("/api/tasks", headers=alice).status_code for _ in range(5)]
    assert 429 in statuses
    time.sleep(1.1)
    assert api.get("/api/tasks", headers=alice).status_code == 200


def test_calls_without_a_credential_are_limited_per_address(serve: Client) -> None:
    api = limited(serve)
    statuses = [api.get("/api/tasks").status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # Anonymous calls from an address never lock its signed-in users out.
    assert api.get("/api/tasks", headers=user()).status_code == 200


def test_refused_credentials_are_counted_per_address(serve: Client) -> None:
    api = limited(serve)
    statuses = [api.get("/api/tasks", headers=bearer("guess")).status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    # That address is now refused whatever credential it sends.
    assert api.get("/api/tasks", headers=user()).status_code == 429


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/nowhere"), ("PUT", "/api/tasks")])
def test_a_credential_never_checked_counts_as_an_anonymous_call(
    serve: Client, method: str, path: str
) -> None:
    api = limited(serve)
    junk = bearer("junk")
    answers = [api.request(method, path, headers=junk) for _ in range(3)]
    assert [state(answer)[:3] for answer in answers] == [
        ("address", 3, 2),
        ("address", 3, 1),
        ("address", 3, 0),
    ]
    assert api.get("/api/tasks").status_code == 429  # the address's anonymous calls
    assert api.get("/api/tasks", headers=user()).status_code == 200  # not its users


def test_a_scheme_other_than_bearer_is_an_anonymous_call(serve: Client) -> None:
    api = limited(serve)
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    statuses = [api.get("/api/tasks", headers=basic).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    assert api.get("/api/tasks", headers=user()).status_code == 200


def test_only_a_probes_get_is_exempt(serve: Client) -> None:
    api = limited(serve)
    assert [api.get("/api/tasks").status_code for _ in range(4)][-1] == 429
    assert api.get("/api/health/ready").status_code == 200
    assert api.post("/api/health/ready").status_code == 429


def test_limits_can_be_switched_off(serve: Client) -> None:
    api = limited(serve, rate_limit_enabled=False)
    alice = user()
    for _ in range(10):
        response = api.get("/api/tasks", headers=alice)
        assert response.status_code == 200
        assert "RateLimit" not in response.headers


@needs_redis
def test_two_apps_share_one_count_in_redis(serve: Client) -> None:
    first, second = (limited(serve, redis_url=REDIS_URL) for _ in range(2))
    alice = user()
    statuses = [
        (first if i % 2 else second).get("/api/tasks", headers=alice).status_code for i in range(7)
    ]
    assert statuses == [200] * 5 + [429] * 2


@needs_redis
def test_a_user_over_the_limit_stays_refused_when_redis_comes_back_empty(serve: Client) -> None:
    api = limited(serve, redis_url=REDIS_URL)
    subject = f"u-{uuid.uuid4().hex[:12]}"
    alice = bearer(make_token(subject, iss=None, aud=None))
    statuses = [api.get("/api/tasks", headers=alice).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    # What a Redis restarted without its data has: nothing of this user, nor of the window.
    server = redis.Redis.from_url(REDIS_URL)
    lost = server.keys(f"todo-api:rate:user:{subject}:*")
    assert lost
    server.delete(*lost, *server.keys("todo-api:rate-window:*"))
    assert api.get("/api/tasks", headers=alice).status_code == 429
    # And Redis has the count again, for the other processes.
    assert int(server.get(lost[0]) or 0) >= 6


@needs_redis
def test_accepted_credentials_leave_no_guess_behind_in_redis(serve: Client) -> None:
    # Each new token is checked: counted as a guess first, and given back once accepted.
    api = limited(serve, redis_url=REDIS_URL, rate_limit_per_user=100)
    subject = f"u-{uuid.uuid4().hex[:12]}"
    statuses = [
        api.get("/api/tasks", headers=bearer(make_token(subject, jti=str(n)))).status_code
        for n in range(10)
    ]
    assert statuses == [200] * 10
    # Not one guess counted against the address.
    server = redis.Redis.from_url(REDIS_URL)
    counts = [server.get(key) for key in server.scan_iter("todo-api:rate:address:*testclient:*")]
    assert [int(count or 0) for count in counts] == [0] * len(counts)


def test_an_unreachable_redis_still_limits_and_breaks_nothing(
    serve: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = limited(serve, redis_url=f"redis://127.0.0.1:{port}/0")
    alice = user()
    with caplog.at_level(logging.WARNING, logger="todo_api.ratelimit"):
        statuses = [api.get("/api/tasks", headers=alice).status_code for _ in range(7)]
    # Counted in this process instead: the limit holds, and nothing fails.
    assert statuses == [200] * 5 + [429] * 2
    outages = [r for r in caplog.records if "counting rate limits in this process" in r.message]
    assert len(outages) == 1  # logged once, not once a request


@pytest.fixture
def slow_redis() -> Iterator[str]:
    """Redis behind a proxy that holds each answer back 30 ms: a connection stays busy that
    long, so a burst outlasts a small pool for certain."""
    url = urlsplit(REDIS_URL)
    proxy = TcpProxy((url.hostname or "127.0.0.1", url.port or 6379), answer_delay=0.03)
    yield f"redis://127.0.0.1:{proxy.port}{url.path}"
    proxy.cut()


@needs_redis
def test_a_user_over_the_limit_stays_refused_when_the_redis_pool_runs_out(
    serve: Client, slow_redis: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Two connections, each request waiting at most 100 ms for one: a burst of 60 exhausts them.
    api = limited(
        serve,
        redis_url=slow_redis,
        redis_max_connections=2,
        redis_timeout=0.1,
        rate_limit_per_user=5,
    )
    alice = user()
    assert [api.get("/api/tasks", headers=alice).status_code for _ in range(5)] == [200] * 5
    with (
        caplog.at_level(logging.WARNING, logger="todo_api.ratelimit"),
        ThreadPoolExecutor(max_workers=60) as pool,
    ):
        burst = list(
            pool.map(lambda _: api.get("/api/tasks", headers=alice).status_code, range(60))
        )
    outage = [
        r.message for r in caplog.records if "counting rate limits in this process" in r.message
    ]
    assert len(outage) == 1, outage
    assert burst == [429] * 60
    # The burst is over, the counts go on: still refused, however they are counted now.
    assert [api.get("/api/tasks", headers=alice).status_code for _ in range(5)] == [429] * 5
    assert api.get("/api/tasks", headers=user()).status_code == 200


def test_a_request_given_back_late_is_given_back_to_its_own_window() -> None:
    async def counts() -> list[int]:
        counter = MemoryCounter()
        then = time.time() - 120  # a window of a minute, two windows ago
        first, _ = await counter.add("k", 60, 1)
        late, _ = await counter.add("k", 60, -1, at=then)  # that window is gone: untouched
        now, _ = await counter.add("k", 60, 0)
        return [first, late, now]

    assert asyncio.run(counts()) == [1, 0, 1]


def test_a_stalled_redis_costs_one_short_wait_not_one_per_request(serve: Client) -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        api = limited(
            serve,
            redis_url=f"redis://127.0.0.1:{listener.getsockname()[1]}/0",
            rate_limit_per_user=100,
        )
        alice = user()
        started = time.monotonic()
        for _ in range(20):
            assert api.get("/api/tasks", headers=alice).status_code == 200
        assert time.monotonic() - started < 5
