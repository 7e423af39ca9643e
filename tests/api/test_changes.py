"""The changes feed: every write once, in commit order, deletes as tombstones, 410 past purges."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, update
from starlette.testclient import TestClient

from storage import TaskStore
from storage.models import TaskRow
from tests.replica import apply_changes

Create = Callable[..., dict[str, Any]]


def feed(
    client: TestClient, base: str, headers: dict[str, str], cursor: str | None = None, **params: Any
) -> dict[str, Any]:
    if cursor is not None:
        params["cursor"] = cursor
    response = client.get(f"{base}/changes", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_feed_from_the_beginning_has_every_task_in_write_order(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], base: str, create: Create
) -> None:
    first, second = create(title="first"), create(title="second")
    create(headers=bob, title="not alice's")
    page = feed(client, base, alice)
    assert page["has_more"] is False
    assert page["changes"] == [
        {"op": "upsert", "task": first},
        {"op": "upsert", "task": second},
    ]
    # Nothing new: the same cursor comes back with nothing.
    again = feed(client, base, alice, page["cursor"])
    assert again == {"changes": [], "cursor": page["cursor"], "has_more": False}


def test_each_task_appears_once_at_its_latest_state(
    client: TestClient, alice: dict[str, str], base: str, create: Create
) -> None:
    first, second = create(title="a"), create(title="b")
    cursor = feed(client, base, alice)["cursor"]
    client.patch(f"/api/tasks/{first['id']}", json={"title": "a2"}, headers=alice)
    client.patch(f"/api/tasks/{second['id']}", json={"title": "b2"}, headers=alice)
    latest = client.patch(f"/api/tasks/{first['id']}", json={"title": "a3"}, headers=alice)

    page = feed(client, base, alice, cursor)

    assert [change["task"]["title"] for change in page["changes"]] == ["b2", "a3"]
    assert page["changes"][1]["task"] == latest.json()


def test_a_delete_is_a_tombstone_and_a_restore_an_upsert(
    client: TestClient, alice: dict[str, str], base: str, create: Create
) -> None:
    task = create()
    cursor = feed(client, base, alice)["cursor"]
    client.delete(f"/api/tasks/{task['id']}", headers=alice)
    page = feed(client, base, alice, cursor)
    [change] = page["changes"]
    assert change["op"] == "delete"
    assert change["id"] == task["id"]
    deleted_at = dt.datetime.fromisoformat(change["deleted_at"])
    assert abs(deleted_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert set(change) == {"op", "id", "deleted_at"}  # no content of a deleted task

    restored = client.post(f"/api/tasks/{task['id']}/restore", headers=alice).json()
    assert feed(client, base, alice, page["cursor"])["changes"] == [
        {"op": "upsert", "task": restored}
    ]


def test_pages_follow_the_cursor_until_has_more_is_false(
    client: TestClient, alice: dict[str, str], base: str, create: Create
) -> None:
    made = [create(title=f"t{i}")["id"] for i in range(7)]
    seen: list[int] = []
    cursor = None
    while True:
        page = feed(client, base, alice, cursor, limit=3)
        assert len(page["changes"]) <= 3
        seen += [change["task"]["id"] for change in page["changes"]]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert seen == made


@pytest.mark.parametrize("cursor", ["bm9wZQ", "eyJzIjoiY3JlYXRlZCJ9", "!!", "eyJhZnRlciI6LTF9"])
def test_a_cursor_that_is_not_the_feeds_is_422(
    client: TestClient, alice: dict[str, str], cursor: str
) -> None:
    response = client.get("/api/tasks/changes", params={"cursor": cursor}, headers=alice)
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "cursor"


def test_a_list_cursor_is_not_a_feed_cursor(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    create(), create()
    link = client.get("/api/tasks?limit=1", headers=alice).headers["Link"]
    list_cursor = link.split("cursor=")[1].split(">")[0]
    response = client.get("/api/tasks/changes", params={"cursor": list_cursor}, headers=alice)
    assert response.status_code == 422


def test_a_cursor_from_before_purged_deletes_is_410_and_a_fresh_sync_works(
    client: TestClient, alice: dict[str, str], base: str, create: Create, engine: Engine
) -> None:
    kept, gone = create(title="kept"), create(title="gone")
    old_cursor = feed(client, base, alice)["cursor"]
    client.delete(f"/api/tasks/{gone['id']}", headers=alice)
    after_delete = feed(client, base, alice, old_cursor)["cursor"]
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    with engine.begin() as connection:
        deletion = update(TaskRow).where(TaskRow.id == gone["id"])
        connection.execute(deletion.values(deleted_at=long_ago))
    assert TaskStore(engine, quota=100).purge().tasks == 1

    response = client.get(f"{base}/changes", params={"cursor": old_cursor}, headers=alice)
    assert response.status_code == 410
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "without a cursor" in response.json()["detail"]
    # A client that had seen the delete missed nothing, and a fresh sync starts over.
    assert feed(client, base, alice, after_delete)["changes"] == []
    assert feed(client, base, alice)["changes"] == [{"op": "upsert", "task": kept}]


def test_a_cursor_ahead_of_the_users_writes_is_410(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], create: Create
) -> None:
    for _ in range(3):
        create()
    alices = feed(client, "/api/tasks", alice)["cursor"]
    # Bob has written less than that: his database state cannot have produced this cursor.
    create(headers=bob)
    response = client.get("/api/tasks/changes", params={"cursor": alices}, headers=bob)
    assert response.status_code == 410


def test_a_reader_polling_through_concurrent_writes_ends_with_the_databases_state(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    """Writers commit in any order; the feed must still deliver every change to a poller."""
    ids = [create(title=f"seed {i}")["id"] for i in range(10)]
    replica: dict[int, dict[str, Any]] = {}
    cursor: list[str | None] = [None]
    stop = threading.Event()
    failures: list[str] = []

    def poll_once() -> None:
        while True:
            page = feed(client, "/api/tasks", alice, cursor[0], limit=7)
            apply_changes(replica, page)
            cursor[0] = page["cursor"]
            if not page["has_more"]:
                return

    def poll() -> None:
        try:
            while not stop.is_set():
                poll_once()
        except AssertionError as exc:  # reported by the test thread
            failures.append(str(exc))

    def write(i: int) -> None:
        rng = random.Random(i)  # noqa: S311 - a repeatable mix of writes, not a secret
        target = rng.choice(ids)
        url = f"/api/tasks/{target}"
        action = i % 6
        if action == 0:
            ids.append(create(title=f"new {i}")["id"])
        elif action == 1:
            client.patch(url, json={"title": f"patch {i}"}, headers=alice)
        elif action == 2:
            client.post(f"{url}/complete", headers=alice)
        elif action == 3:
            client.delete(url, headers=alice)
        elif action == 4:
            client.post(f"{url}/restore", headers=alice)
        else:
            client.put(url, json={"priority": rng.choice(["low", "high"])}, headers=alice)

    reader = threading.Thread(target=poll)
    reader.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(240)))
    stop.set()
    reader.join()
    assert failures == []
    poll_once()

    listed = client.get("/api/tasks?limit=500", headers=alice).json()
    assert replica == {task["id"]: task for task in listed}
