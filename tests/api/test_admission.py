"""Admission: at most one request per pooled connection at work; the rest wait a bounded time."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from storage import TaskStore
from tests.conftest import SECRET, Client, bearer, make_token
from tests.prometheus import samples, value
from todo_api.settings import PoolSettings

ALICE = bearer(make_token("alice", iss=None, aud=None))


def test_requests_past_the_pool_wait_a_bounded_time_then_get_503(
    serve: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two places, half a second's patience; each request works for two seconds, none of it
    # holding a database connection, so only admission can refuse them.
    api = serve(
        auth_secret=SECRET,
        pool=PoolSettings(size=1, max_overflow=1, timeout=0.5),
        metrics_enabled=True,
    )
    task = api.post("/api/tasks", json={"title": "slow"}, headers=ALICE).json()
    get = TaskStore.get

    def slow_get(self: TaskStore, *args: Any) -> Any:
        time.sleep(2)
        return get(self, *args)

    monkeypatch.setattr(TaskStore, "get", slow_get)
    start = threading.Barrier(6)

    def fetch(_: int) -> tuple[int, dict[str, str], str]:
        start.wait()
        response = api.get(f"/api/tasks/{task['id']}", headers=ALICE)
        return response.status_code, dict(response.headers), response.text

    with ThreadPoolExecutor(max_workers=7) as pool:
        answers = pool.map(fetch, range(6))
        time.sleep(1)  # while the two admitted requests work
        health = api.get("/api/health")
        # Metrics are outside admission: read while every place is taken.
        busy = api.get("/api/metrics")
        answers = list(answers)

    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200, 200, 503, 503, 503, 503]
    for status, headers, text in answers:
        if status == 503:
            assert headers["retry-after"] == "1"
            assert headers["content-type"] == "application/problem+json"
            assert "busy" in text
    assert health.status_code == 200  # liveness is never held back
    assert busy.status_code == 200
    scraped = samples(busy.text)
    assert value(scraped, "todo_api_requests_in_flight") == 2  # the two admitted
    assert value(scraped, "todo_api_admission_waits_total") == 4
    assert value(scraped, "todo_api_admission_refusals_total") == 4
