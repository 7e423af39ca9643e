"""Event streams against the connections of real `todo-api serve` processes: streams take a
share of MAX_CONNECTIONS and leave the rest to ordinary requests, and with Redis the per-user
bound holds across processes.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from starlette.testclient import TestClient

from tests.api.test_live_updates import server_env
from tests.conftest import bearer, make_token
from tests.network import serving
from tests.redis_service import REDIS_URL, redis_answers
from tests.sse import EventReader

MAX_CONNECTIONS = 40
# The default STREAMS_PER_USER: the crowd below uses it as it is.
STREAMS_PER_USER = 10
ORDINARY_REQUESTS = 20


@contextlib.contextmanager
def started(env: dict[str, str], directory: Path, name: str) -> Iterator[str]:
    with (
        (directory / f"{name}.log").open("w") as out,
        serving(env, directory, out, subprocess.STDOUT) as (base, _process),
    ):
        yield base


def stream(base: str, headers: dict[str, str]) -> EventReader | None:
    """A stream of the user's, or None when the server would not even answer its head."""
    try:
        return EventReader(f"{base}/tasks/events", headers)
    except (OSError, ValueError, IndexError):
        return None


def status_of(base: str, headers: dict[str, str]) -> int | str:
    """An ordinary request on a connection of its own: its status, or how it failed."""
    try:
        return httpx.get(f"{base}/tasks", headers=headers, timeout=10).status_code
    except httpx.TransportError as exc:
        return type(exc).__name__


@pytest.fixture(scope="module")
def crowded(
    database_url: str, app_client: TestClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server with few connections, and every stream setting at its default."""
    env = server_env(database_url, MAX_CONNECTIONS=str(MAX_CONNECTIONS))
    with started(env, tmp_path_factory.mktemp("crowded"), "crowded") as base:
        yield base


def test_streams_leave_room_for_ordinary_requests(crowded: str, client: TestClient) -> None:
    # More users, each within STREAMS_PER_USER, than MAX_CONNECTIONS has room for.
    users = [
        bearer(make_token(f"crowd-{n}")) for n in range(MAX_CONNECTIONS // STREAMS_PER_USER + 1)
    ]
    with contextlib.ExitStack() as stack:
        opened, refused = [], []
        for headers in users:
            for _ in range(STREAMS_PER_USER):
                reader = stream(crowded, headers)
                if reader is not None and reader.status == 200:
                    opened.append(stack.enter_context(reader))
                    continue
                refused.append(None if reader is None else reader.status)
                if reader is not None:
                    reader.close()  # a refused client leaves: only open streams are held
        assert opened
        # Whatever was refused was refused as the process's bound on streams.
        assert set(refused) == {503}, refused
        other = bearer(make_token("not-streaming"))
        answered = [status_of(crowded, other) for _ in range(ORDINARY_REQUESTS)]
        # The streams that are open still stream.
        assert all(not reader.ended.is_set() for reader in opened)
    assert answered.count(200) == ORDINARY_REQUESTS, answered
    # Half the connections, by default, are the streams' share.
    assert len(opened) == MAX_CONNECTIONS // 2


@pytest.fixture
def shared_redis() -> Iterator[str]:
    if not redis_answers():
        pytest.skip(f"needs Redis at {REDIS_URL}")
    """Redis db 15: a user of this test's own names the only keys it makes, removed after."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    client.ping()
    yield REDIS_URL
    for key in client.scan_iter(match="todo-api:streams:edge-streams-*"):
        client.delete(key)
    client.close()


@pytest.fixture
def two_processes(
    database_url: str,
    app_client: TestClient,
    shared_redis: str,
    tmp_path: Path,
) -> Iterator[tuple[str, str]]:
    env = server_env(database_url, REDIS_URL=shared_redis, STREAMS_PER_USER="2")
    with started(env, tmp_path, "a") as a, started(env, tmp_path, "b") as b:
        yield a, b


def test_the_per_user_bound_holds_across_processes_sharing_redis(
    two_processes: tuple[str, str], client: TestClient
) -> None:
    a, b = two_processes
    headers = bearer(make_token(f"edge-streams-{uuid.uuid4().hex[:12]}"))
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(EventReader(f"{a}/tasks/events", headers))
        second = stack.enter_context(EventReader(f"{a}/tasks/events", headers))
        assert (first.status, second.status) == (200, 200)
        with EventReader(f"{b}/tasks/events", headers) as third:
            assert third.status == 429
            assert third.headers["content-type"] == "application/problem+json"
            assert "retry-after" in third.headers
            problem = third.json_body()
        assert problem["status"] == 429
        assert "2 event streams open" in problem["detail"]
        first.close()
        # Its lease goes when it closes: B admits one again (the close takes a moment to
        # reach A and then Redis).
        deadline = time.monotonic() + 10
        while True:
            with EventReader(f"{b}/tasks/events", headers) as again:
                if again.status == 200:
                    break
                assert again.status == 429
            assert time.monotonic() < deadline, "B never admitted the stream"
            time.sleep(0.1)
