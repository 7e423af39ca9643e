"""Leases of event streams in Redis (db 15), one per open stream: the per-user bound across
processes, leases that run out when nobody renews them, and Redis away refusing nothing."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from types import SimpleNamespace
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import pytest
import redis

from storage import TaskStore
from storage.tickets import TicketStore
from tests.tcp_proxy import TcpProxy
from todo_api.live.leases import StreamLeases, leases_key
from todo_api.live.streams import LiveUpdates
from todo_api.live.wakeups import Wakeups
from todo_api.settings import Settings
from todo_api.usecases.errors import StreamLimit

T = TypeVar("T")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def user() -> Iterator[str]:
    """A user of this test's own: the only key it makes in the shared Redis, removed after."""
    name = f"lease-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(leases_key(name))
    client.close()


def unreachable() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/15"


@asynccontextmanager
async def processes(
    count: int, url: str = REDIS_URL, **options: Any
) -> AsyncIterator[list[StreamLeases]]:
    """`count` processes' leases on one Redis, per_user=2."""
    async with AsyncExitStack() as stack:
        made = []
        for _ in range(count):
            leases = StreamLeases(url, per_user=2, max_connections=4, timeout=0.25, **options)
            stack.push_async_callback(leases.close)
            made.append(leases)
        yield made


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def held_in_redis(user: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.zcard(leases_key(user)))
    finally:
        client.close()


def test_the_bound_holds_across_processes_and_a_closed_stream_gives_its_place_back(
    user: str,
) -> None:
    async def scenario() -> list[bool]:
        async with processes(2) as (a, b):
            first, second = await a.acquire(user), await a.acquire(user)
            refused = await b.acquire(user)
            assert first is not None
            assert second is not None
            await a.release(user, first)
            admitted = await b.acquire(user)
            return [refused is None, admitted is not None]

    assert run(scenario) == [True, True]


def test_a_dead_process_leases_run_out_and_a_living_ones_are_renewed(user: str) -> None:
    """Leases of 1.5 s: the dead process never renews; the living one renews once the first
    lease's end has passed, and keeps its place."""

    async def scenario() -> tuple[bool, bool, int]:
        async with processes(3, lease_seconds=1.5) as (dead, living, other):
            assert await dead.acquire(user) is not None
            assert await living.acquire(user) is not None
            full = await other.acquire(user) is None
            # Renewed while it is still good: it stays past the length it was first given.
            await asyncio.sleep(1.0)
            await living.renew()
            deadline = time.monotonic() + 10
            while await other.acquire(user) is None:
                assert time.monotonic() < deadline, "the dead process's lease never ran out"
                await asyncio.sleep(0.1)
            # The place the dead lease held, and no other: the living lease still counts.
            still_full = await other.acquire(user) is None
            return full, still_full, held_in_redis(user)

    assert run(scenario) == (True, True, 2)


def test_an_unreachable_redis_refuses_no_stream_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> list[str | None]:
        async with processes(1, unreachable()) as (leases,):
            taken = [await leases.acquire("alice") for _ in range(4)]
            await leases.renew()
            for lease in taken:
                assert lease is not None
                await leases.release("alice", lease)
            return taken

    with caplog.at_level(logging.WARNING, logger="todo_api.live"):
        taken = run(scenario)
    assert None not in taken  # past per_user=2: the bound across processes lapses, no refusal
    falls = [r for r in caplog.records if getattr(r, "event", None) == "redis_fallback"]
    assert len(falls) == 1


def test_leases_granted_while_redis_was_away_count_once_it_answers(
    user: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = urlsplit(REDIS_URL)
    proxy = TcpProxy((url.hostname or "127.0.0.1", url.port or 6379))
    proxy.cut()

    async def scenario() -> tuple[int, int]:
        async with processes(
            1, f"redis://127.0.0.1:{proxy.port}{url.path}", pause_after_failure=0.2
        ) as (leases,):
            assert await leases.acquire(user) is not None
            during = held_in_redis(user)
            proxy.restore()
            await asyncio.sleep(0.3)  # past the pause after the failure
            await leases.renew()
            return during, held_in_redis(user)

    try:
        with caplog.at_level(logging.WARNING, logger="todo_api.live"):
            assert run(scenario) == (0, 1)
    finally:
        proxy.cut()
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events == ["redis_fallback", "redis_back"]


def test_with_redis_unreachable_the_process_bound_per_user_still_holds() -> None:
    """The fall-back is the bound of this process, not none: the third stream is refused."""
    settings = Settings(auth_secret="s" * 32, streams_per_user=2, streams_per_process=10)

    async def scenario() -> list[str]:
        async with processes(1, unreachable()) as (leases,):
            live = LiveUpdates(
                settings,
                # Opening a stream reads nothing yet, and reminders are never claimed here.
                cast(TaskStore, SimpleNamespace(reminders=lambda lease: None)),
                # Streams opened with a bearer token: no ticket is spent.
                cast(TicketStore, SimpleNamespace()),
                Wakeups(settings.streams_per_user, settings.streams_per_process),
                asyncio.Semaphore(1),
                leases=leases,
            )
            outcomes = []
            for _ in range(3):
                try:
                    await live.open("alice", None, None)
                    outcomes.append("open")
                except StreamLimit as limit:
                    outcomes.append(f"refused per_user={limit.per_user}")
            return outcomes

    assert run(scenario) == ["open", "open", "refused per_user=True"]
