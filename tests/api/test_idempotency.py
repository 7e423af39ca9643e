"""Idempotency-Key on create: a retried create replays the first answer and makes no task."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, update
from starlette.testclient import TestClient

from storage import TaskStore
from storage.models import IdempotencyKeyRow, TaskRow
from tests.conftest import SECRET, Client, bearer, make_token
from todo_api.app import create_app
from todo_api.contract import task_defaults
from todo_api.settings import Settings


def count_tasks(engine: Engine, user: str) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(TaskRow).where(TaskRow.user_id == user)
        return connection.scalar(query) or 0


def test_a_retried_create_replays_the_first_answer(
    client: TestClient, alice: dict[str, str], engine: Engine, base: str
) -> None:
    headers = alice | {"Idempotency-Key": "create-milk-7f3a"}
    body = {"title": "Buy milk", "tags": ["home"]}
    first = client.post(base, json=body, headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    # The task changes in between; the replay is still the first answer.
    client.patch(first.headers["Location"], json={"title": "Buy oat milk"}, headers=alice)

    again = client.post(base, json=body, headers=headers)

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert count_tasks(engine, "alice") == 1


def test_a_key_with_another_body_is_422_and_creates_nothing(
    client: TestClient, alice: dict[str, str], engine: Engine
) -> None:
    headers = alice | {"Idempotency-Key": "k1"}
    assert client.post("/api/tasks", json={"title": "one"}, headers=headers).status_code == 201
    response = client.post("/api/tasks", json={"title": "two"}, headers=headers)
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {
            "parameter": "Idempotency-Key",
            "detail": "was already used with a different request; use a new key for a new task",
        }
    ]
    assert count_tasks(engine, "alice") == 1


def test_keys_are_per_user(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], engine: Engine
) -> None:
    key = {"Idempotency-Key": "same-key"}
    mine = client.post("/api/tasks", json={"title": "t"}, headers=alice | key)
    theirs = client.post("/api/tasks", json={"title": "t"}, headers=bob | key)
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert theirs.json()["user_id"] == "bob"
    assert count_tasks(engine, "alice") == count_tasks(engine, "bob") == 1


def test_without_a_key_every_create_makes_a_task(
    client: TestClient, alice: dict[str, str], engine: Engine
) -> None:
    for _ in range(2):
        client.post("/api/tasks", json={"title": "t"}, headers=alice)
    assert count_tasks(engine, "alice") == 2


@pytest.mark.parametrize("key", [b"", b"has space", b"x" * 256, "naïve".encode(), b"tab\there"])
def test_an_unusable_key_is_422(client: TestClient, alice: dict[str, str], key: bytes) -> None:
    headers = {**alice, "Idempotency-Key": key}
    response = client.post("/api/tasks", json={"title": "t"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "Idempotency-Key"


def test_a_create_refused_by_the_store_keeps_no_key(serve: Client) -> None:
    api = serve(auth_secret=SECRET, task_quota=1)
    alice = bearer(make_token("alice", iss=None, aud=None))
    first = api.post("/api/tasks", json={"title": "first"}, headers=alice).json()
    headers = alice | {"Idempotency-Key": "retry-me"}
    assert api.post("/api/tasks", json={"title": "t"}, headers=headers).status_code == 409
    api.delete(f"/api/tasks/{first['id']}", headers=alice)
    # The refusal was not remembered: the retry creates, and is no replay.
    again = api.post("/api/tasks", json={"title": "t"}, headers=headers)
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers


def test_an_expired_key_creates_again(
    client: TestClient, alice: dict[str, str], engine: Engine
) -> None:
    headers = alice | {"Idempotency-Key": "old"}
    first = client.post("/api/tasks", json={"title": "t"}, headers=headers).json()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with engine.begin() as connection:
        connection.execute(update(IdempotencyKeyRow).values(expires_at=past))
    again = client.post("/api/tasks", json={"title": "t"}, headers=headers)
    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first["id"]
    assert count_tasks(engine, "alice") == 2


def test_keys_live_as_long_as_configured(
    client: TestClient, alice: dict[str, str], engine: Engine, settings: Settings
) -> None:
    client.post("/api/tasks", json={"title": "t"}, headers=alice | {"Idempotency-Key": "ttl"})
    with engine.connect() as connection:
        expires = connection.scalar(select(IdempotencyKeyRow.expires_at))
    lifetime = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23, minutes=59) < lifetime <= dt.timedelta(hours=24)
    assert settings.idempotency_key_lifetime == dt.timedelta(hours=24)


def test_concurrent_creates_with_one_key_make_one_task(
    client: TestClient, alice: dict[str, str], engine: Engine
) -> None:
    for attempt in range(3):
        senders = 8
        start = threading.Barrier(senders)
        headers = alice | {"Idempotency-Key": f"burst-{attempt}"}

        def send(
            _: int, headers: dict[str, str] = headers, start: threading.Barrier = start
        ) -> tuple[int, int, bool]:
            start.wait()
            response = client.post("/api/tasks", json={"title": "once"}, headers=headers)
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            return response.status_code, response.json()["id"], replayed

        with ThreadPoolExecutor(max_workers=senders) as pool:
            answers = list(pool.map(send, range(senders)))
        assert {status for status, _, _ in answers} == {201}
        assert len({task_id for _, task_id, _ in answers}) == 1
        assert sum(1 for *_, replayed in answers if not replayed) == 1
        assert count_tasks(engine, "alice") == attempt + 1


def test_a_key_that_vanishes_while_it_is_read_is_claimed_again(
    client: TestClient, alice: dict[str, str], engine: Engine, settings: Settings
) -> None:
    """An expired key in the way may be deleted by another request between this request's
    insert (which it stopped) and its read: the create then claims the key afresh."""
    headers = alice | {"Idempotency-Key": "vanishing"}
    client.post("/api/tasks", json={"title": "first"}, headers=headers)
    store = TaskStore(engine, quota=100)
    vanished: list[bool] = []

    def delete_before_the_read(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT idempotency_keys.fingerprint") and not vanished:
            vanished.append(True)
            connection.exec_driver_sql("DELETE FROM idempotency_keys")

    event.listen(engine, "before_cursor_execute", delete_before_the_read)
    try:
        created = store.create(
            "alice", task_defaults() | {"title": "second"}, idempotency_key="vanishing"
        )
    finally:
        event.remove(engine, "before_cursor_execute", delete_before_the_read)
    assert vanished == [True]
    assert created.replayed is False
    assert created.task.title == "second"
    assert count_tasks(engine, "alice") == 2


@pytest.fixture
def second_process(settings: Settings, client: TestClient) -> Iterator[TestClient]:
    """Another app on the same database, as another server process would be."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as other:
        yield other


def test_a_replay_is_found_by_another_server_on_the_same_database(
    client: TestClient, second_process: TestClient, alice: dict[str, str], engine: Engine
) -> None:
    headers = alice | {"Idempotency-Key": "across-servers"}
    first = client.post("/api/tasks", json={"title": "t"}, headers=headers)
    again = second_process.post("/api/tasks", json={"title": "t"}, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert count_tasks(engine, "alice") == 1
