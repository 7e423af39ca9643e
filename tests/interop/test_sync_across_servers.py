"""Two real server processes on one database, driven by concurrent HTTP clients.

What a Next.js app behind a load balancer sees: ETags, idempotent replays and the changes feed
are one consistent state whichever process answers, under real concurrent requests.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import SECRET, bearer, make_token
from tests.network import running_server
from tests.replica import apply_changes

ALICE = bearer(make_token("alice"))


@pytest.fixture(scope="module")
def started(
    database_url: str, app_client: TestClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    """Two `todo-api serve` processes on the suite's database (migrated by `app_client`)."""
    tmp_path = tmp_path_factory.mktemp("servers")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": SECRET,
        "RATE_LIMIT_PER_USER": "1000000",
        "RATE_LIMIT_PER_ADDRESS": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    with contextlib.ExitStack() as stack:
        bases = [
            stack.enter_context(
                running_server(
                    env,
                    tmp_path,
                    stdout=stack.enter_context((tmp_path / f"server{i}.log").open("w")),
                    stderr=subprocess.STDOUT,
                )
            )
            for i in range(2)
        ]
        yield bases


@pytest.fixture
def servers(started: list[str], client: TestClient) -> list[str]:
    """The two servers, with the tables emptied after each test (by `client`)."""
    return started


def test_of_concurrent_if_match_writers_on_two_servers_exactly_one_wins(
    servers: list[str],
) -> None:
    first, second = servers
    created = httpx.post(f"{first}/tasks", json={"title": "shared"}, headers=ALICE)
    task_id, tag = created.json()["id"], created.headers["ETag"]
    start = threading.Barrier(8)

    def write(i: int) -> int:
        start.wait()
        url = f"{servers[i % 2]}/tasks/{task_id}"
        headers = ALICE | {"If-Match": tag}
        return httpx.patch(url, json={"title": f"writer {i}"}, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(write, range(8)))
    assert statuses == [200] + [412] * 7
    # Either server now answers the winner's version, under the same tag.
    answers = [httpx.get(f"{base}/tasks/{task_id}", headers=ALICE) for base in (first, second)]
    assert answers[0].json() == answers[1].json()
    assert answers[0].headers["ETag"] == answers[1].headers["ETag"] != tag


def test_one_idempotency_key_sent_to_both_servers_at_once_makes_one_task(
    servers: list[str],
) -> None:
    start = threading.Barrier(8)
    headers = ALICE | {"Idempotency-Key": "double-submit"}

    def send(i: int) -> tuple[int, int]:
        start.wait()
        response = httpx.post(f"{servers[i % 2]}/tasks", json={"title": "once"}, headers=headers)
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(8)))
    assert {status for status, _ in answers} == {201}
    assert len({task_id for _, task_id in answers}) == 1
    assert len(httpx.get(f"{servers[0]}/tasks", headers=ALICE).json()) == 1


def test_a_feed_reader_on_one_server_sees_every_write_made_on_both(
    servers: list[str],
) -> None:
    ids = [
        httpx.post(f"{servers[i % 2]}/tasks", json={"title": f"t{i}"}, headers=ALICE).json()["id"]
        for i in range(8)
    ]
    replica: dict[int, dict[str, Any]] = {}
    cursor: list[str | None] = [None]
    stop = threading.Event()

    def drain() -> None:
        while True:
            params = {"limit": "5", **({"cursor": cursor[0]} if cursor[0] else {})}
            response = httpx.get(f"{servers[0]}/tasks/changes", params=params, headers=ALICE)
            assert response.status_code == 200, response.text
            page = response.json()
            apply_changes(replica, page)
            cursor[0] = page["cursor"]
            if not page["has_more"]:
                return

    errors: list[BaseException] = []

    def poll() -> None:
        try:
            while not stop.is_set():
                drain()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    def write(job: tuple[int, str]) -> None:
        i, base = job
        url = f"{base}/tasks/{ids[i % len(ids)]}"
        action = ("patch", "complete", "delete", "restore", "create")[i % 5]
        if action == "patch":
            response = httpx.patch(url, json={"title": f"p{i}"}, headers=ALICE)
        elif action == "complete":
            response = httpx.post(f"{url}/complete", headers=ALICE)
        elif action == "delete":
            response = httpx.delete(url, headers=ALICE)
        elif action == "restore":
            response = httpx.post(f"{url}/restore", headers=ALICE)
        else:
            response = httpx.post(f"{base}/tasks", json={"title": f"c{i}"}, headers=ALICE)
        assert response.status_code in {200, 201, 204, 404}, response.text

    reader = threading.Thread(target=poll)
    reader.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, zip(range(150), cycle(servers), strict=False)))
    stop.set()
    reader.join()
    assert errors == []
    drain()
    listed = httpx.get(f"{servers[1]}/tasks?limit=500", headers=ALICE).json()
    assert replica == {task["id"]: task for task in listed}
