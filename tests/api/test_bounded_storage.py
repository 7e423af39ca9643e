"""What a user keeps is bounded: live tasks by the quota (409), and deleted-but-restorable
tasks and idempotency keys each by the quota too (the oldest make room for newer ones)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select, text
from starlette.testclient import TestClient

import storage.clock
from storage import TaskStore, build_engine
from storage.migrate import upgrade
from storage.models import IdempotencyKeyRow, TaskOwnerRow, TaskRow
from tests.conftest import SECRET, Client, bearer, make_token
from todo_api.contract import task_defaults

ALICE = bearer(make_token("alice", iss=None, aud=None))
BOB = bearer(make_token("bob", iss=None, aud=None))
QUOTA = 20


def rows(engine: Engine, user: str) -> dict[str, int]:
    with engine.connect() as connection:
        tasks = connection.scalar(select(func.count()).where(TaskRow.user_id == user))
        keys = connection.scalar(select(func.count()).where(IdempotencyKeyRow.user_id == user))
        counts = connection.execute(
            select(TaskOwnerRow.tombstone_count, TaskOwnerRow.key_count).where(
                TaskOwnerRow.user_id == user
            )
        ).one()
    return {
        "task rows": tasks or 0,
        "key rows": keys or 0,
        "tombstone_count": counts.tombstone_count,
        "key_count": counts.key_count,
    }


def churn(api: TestClient, rounds: int, prefix: str = "") -> list[int]:
    """Rounds of QUOTA keyed creates and deletes; the ids in the order they were deleted."""
    deleted = []
    for round_ in range(rounds):
        for i in range(QUOTA):
            headers = ALICE | {"Idempotency-Key": f"{prefix}{round_}-{i}"}
            created = api.post("/api/tasks", json={"title": f"{round_}-{i}"}, headers=headers)
            assert created.status_code == 201, created.text
            assert api.delete(created.headers["Location"], headers=ALICE).status_code == 204
            deleted.append(created.json()["id"])
    return deleted


def test_five_rounds_of_creates_and_deletes_keep_a_bounded_number_of_rows(
    serve: Client, client: TestClient, database_url: str, engine: Engine
) -> None:
    api = serve(auth_secret=SECRET, task_quota=QUOTA, database_url=database_url)
    deleted = churn(api, rounds=5)
    assert rows(engine, "alice") == {
        "task rows": QUOTA,
        "key rows": QUOTA,
        "tombstone_count": QUOTA,
        "key_count": QUOTA,
    }
    # The newest deletions are still restorable; the oldest made room for them.
    assert api.post(f"/api/tasks/{deleted[-1]}/restore", headers=ALICE).status_code == 200
    assert api.post(f"/api/tasks/{deleted[0]}/restore", headers=ALICE).status_code == 404


def test_a_feed_cursor_from_before_an_early_purge_is_410(
    serve: Client, client: TestClient, database_url: str
) -> None:
    api = serve(auth_secret=SECRET, task_quota=QUOTA, database_url=database_url)
    api.post("/api/tasks", json={"title": "seen"}, headers=ALICE)
    cursor = api.get("/api/tasks/changes", headers=ALICE).json()["cursor"]
    churn(api, rounds=2)
    response = api.get(f"/api/tasks/changes?cursor={cursor}", headers=ALICE)
    assert response.status_code == 410
    assert api.get("/api/tasks/changes?limit=500", headers=ALICE).status_code == 200


def test_the_oldest_idempotency_keys_are_forgotten_past_the_bound(
    serve: Client, client: TestClient, database_url: str, engine: Engine
) -> None:
    api = serve(auth_secret=SECRET, task_quota=QUOTA, database_url=database_url)
    churn(api, rounds=2, prefix="k")
    # The newest key still answers with its first create; the oldest no longer does.
    newest = api.post(
        "/api/tasks", json={"title": "1-19"}, headers=ALICE | {"Idempotency-Key": "k1-19"}
    )
    assert newest.headers.get("Idempotent-Replayed") == "true"
    oldest = api.post(
        "/api/tasks", json={"title": "0-0"}, headers=ALICE | {"Idempotency-Key": "k0-0"}
    )
    assert oldest.status_code == 201
    assert "Idempotent-Replayed" not in oldest.headers
    assert rows(engine, "alice")["key rows"] == QUOTA


def test_another_users_rows_are_not_touched(
    serve: Client, client: TestClient, database_url: str, engine: Engine
) -> None:
    api = serve(auth_secret=SECRET, task_quota=QUOTA, database_url=database_url)
    bobs = api.post("/api/tasks", json={"title": "bob's"}, headers=BOB | {"Idempotency-Key": "b"})
    api.delete(bobs.headers["Location"], headers=BOB)
    churn(api, rounds=2)
    assert api.post(f"/api/tasks/{bobs.json()['id']}/restore", headers=BOB).status_code == 200
    assert rows(engine, "bob")["key rows"] == 1


def test_a_restore_gives_its_place_among_the_deleted_back(
    serve: Client, client: TestClient, database_url: str, engine: Engine
) -> None:
    api = serve(auth_secret=SECRET, task_quota=QUOTA, database_url=database_url)
    deleted = churn(api, rounds=1)
    assert api.post(f"/api/tasks/{deleted[0]}/restore", headers=ALICE).status_code == 200
    assert rows(engine, "alice")["tombstone_count"] == QUOTA - 1
    task = api.post("/api/tasks", json={"title": "one more"}, headers=ALICE).json()
    api.delete(f"/api/tasks/{task['id']}", headers=ALICE)
    # Back at the bound, and no deletion purged early to get there.
    assert rows(engine, "alice")["tombstone_count"] == QUOTA
    assert api.post(f"/api/tasks/{deleted[1]}/restore", headers=ALICE).status_code == 200


def test_the_migration_counts_existing_deleted_tasks_and_keys(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0004")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    task = {"title": "t", "completed": False, "priority": 2, "tags": []}
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO task_owners (user_id, task_count) VALUES ('a', 1)"))
        for seq, deleted_at in enumerate([None, now, now], start=1):
            connection.execute(
                insert(TaskRow.__table__),
                {
                    **task,
                    "user_id": "a",
                    "seq": seq,
                    "created_at": now,
                    "updated_at": now,
                    "deleted_at": deleted_at,
                },
            )
        connection.execute(
            insert(IdempotencyKeyRow.__table__),
            {"user_id": "a", "key": "k", "fingerprint": "f", "response": "", "expires_at": now},
        )
    upgrade(engine)
    with engine.connect() as connection:
        counts = connection.execute(
            select(TaskOwnerRow.tombstone_count, TaskOwnerRow.key_count)
        ).one()
    assert tuple(counts) == (2, 1)
    engine.dispose()


def test_a_retry_while_the_first_create_is_in_flight_waits_and_replays(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting keys must not reverse the lock order: the retry expires an older key (which
    moves the owner's key count) while the first request, holding its claim of the key, still
    has the owner's row to take. Both must take the owner's row first, or they deadlock."""
    store = TaskStore(engine, quota=100, idempotency_ttl=dt.timedelta(seconds=10))
    fields = task_defaults() | {"title": "t"}
    start = dt.datetime.now(dt.UTC)
    clock = threading.local()
    monkeypatch.setattr(storage.clock, "utc_now", lambda: getattr(clock, "now", start))
    store.create("carol", fields, idempotency_key="older")  # expires at start + 10 s
    first_writes, go_on = threading.Event(), threading.Event()

    def hold_the_first(_c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Held once it has claimed the key, before it counts the task on the owner's row.
        if threading.current_thread().name == "first" and statement.startswith(
            "INSERT INTO task_owners"
        ):
            first_writes.set()
            go_on.wait(5)

    event.listen(engine, "before_cursor_execute", hold_the_first)
    results: dict[str, object] = {}

    def create(name: str, seconds: float) -> None:
        clock.now = start + dt.timedelta(seconds=seconds)
        try:
            results[name] = store.create("carol", fields, idempotency_key="K").replayed
        except Exception as exc:  # a deadlock, as a 503 would be
            results[name] = type(exc).__name__

    try:
        first = threading.Thread(target=create, name="first", args=("first", 9.9))
        retry = threading.Thread(target=create, name="retry", args=("retry", 10.1))
        first.start()
        assert first_writes.wait(5)
        retry.start()
        time.sleep(0.5)  # the retry is waiting on a lock by now
        go_on.set()
        first.join(10)
        retry.join(10)
    finally:
        event.remove(engine, "before_cursor_execute", hold_the_first)
    assert results == {"first": False, "retry": True}
