"""Undo of deletes: a deleted task is invisible, restorable for a retention period, then purged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, func, select, update
from starlette.testclient import TestClient

from storage import TaskStore
from storage.models import IdempotencyKeyRow, TaskOwnerRow, TaskRow
from tests.conftest import SECRET, Client, bearer, make_token

Create = Callable[..., dict[str, Any]]


def age_deletion(engine: Engine, task_id: int, days: int) -> None:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with engine.begin() as connection:
        connection.execute(update(TaskRow).where(TaskRow.id == task_id).values(deleted_at=when))


def test_a_deleted_task_is_invisible_to_every_other_operation(
    client: TestClient, alice: dict[str, str], base: str, create: Create
) -> None:
    kept, deleted = create(title="kept"), create(title="deleted")
    url = f"{base}/{deleted['id']}"
    assert client.delete(url, headers=alice).status_code == 204

    assert client.get(url, headers=alice).status_code == 404
    assert client.patch(url, json={"title": "x"}, headers=alice).status_code == 404
    assert client.put(url, json={"title": "x"}, headers=alice).status_code == 404
    assert client.post(f"{url}/complete", headers=alice).status_code == 404
    assert client.patch(f"{url}/complete", headers=alice).status_code == 404
    assert client.delete(url, headers=alice).status_code == 404
    listed = client.get(base, headers=alice)
    assert listed.json() == [kept]
    assert listed.headers["X-Total-Count"] == "1"
    filtered = client.get(f"{base}?q=deleted", headers=alice)
    assert filtered.json() == []
    assert filtered.headers["X-Total-Count"] == "0"


def test_restore_brings_the_task_back_with_a_new_etag(
    client: TestClient, alice: dict[str, str], base: str, create: Create
) -> None:
    task = create(title="oops", tags=["x"])
    url = f"{base}/{task['id']}"
    before = client.get(url, headers=alice).headers["ETag"]
    client.delete(url, headers=alice)

    restored = client.post(f"{url}/restore", headers=alice)

    assert restored.status_code == 200
    body = restored.json()
    assert {k: v for k, v in body.items() if k != "updated_at"} == {
        k: v for k, v in task.items() if k != "updated_at"
    }
    assert body["updated_at"] >= task["updated_at"]
    assert restored.headers["ETag"] not in {before, ""}
    assert client.get(url, headers=alice).json() == body
    assert client.get(base, headers=alice).headers["X-Total-Count"] == "1"


def test_restoring_a_live_task_answers_it_unchanged(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create()
    url = f"/api/tasks/{task['id']}"
    etag = client.get(url, headers=alice).headers["ETag"]
    again = client.post(f"{url}/restore", headers=alice)
    assert again.status_code == 200
    assert again.json() == task
    assert again.headers["ETag"] == etag


def test_only_the_owner_can_restore(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], create: Create
) -> None:
    create(headers=bob)  # bob has tasks too: the refusal is the owner check on alice's row
    task = create()
    client.delete(f"/api/tasks/{task['id']}", headers=alice)
    assert client.post(f"/api/tasks/{task['id']}/restore", headers=bob).status_code == 404
    assert client.post(f"/api/bob/tasks/{task['id']}/restore", headers=bob).status_code == 404
    assert client.post(f"/api/alice/tasks/{task['id']}/restore", headers=bob).status_code == 403
    assert client.post("/api/tasks/999999/restore", headers=alice).status_code == 404


def test_after_the_retention_period_restore_is_404_and_purge_removes_it(
    client: TestClient, alice: dict[str, str], create: Create, engine: Engine
) -> None:
    old, recent = create(title="old"), create(title="recent")
    for task in (old, recent):
        client.delete(f"/api/tasks/{task['id']}", headers=alice)
    age_deletion(engine, old["id"], days=31)
    age_deletion(engine, recent["id"], days=29)

    assert client.post(f"/api/tasks/{old['id']}/restore", headers=alice).status_code == 404
    purged = TaskStore(engine, quota=100).purge()
    assert purged.tasks == 1
    with engine.connect() as connection:
        left = set(connection.scalars(select(TaskRow.id)))
    assert left == {recent["id"]}
    assert client.post(f"/api/tasks/{recent['id']}/restore", headers=alice).status_code == 200


def test_a_delete_purges_the_users_expired_deletions_on_the_way(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], create: Create, engine: Engine
) -> None:
    alices, bobs = create(), create(headers=bob)
    client.delete(f"/api/tasks/{alices['id']}", headers=alice)
    client.delete(f"/api/tasks/{bobs['id']}", headers=bob)
    age_deletion(engine, alices["id"], days=40)
    age_deletion(engine, bobs["id"], days=40)

    client.delete(f"/api/tasks/{create()['id']}", headers=alice)

    with engine.connect() as connection:
        left = set(connection.scalars(select(TaskRow.id).where(TaskRow.deleted_at.is_not(None))))
        purged_seq = connection.scalar(
            select(TaskOwnerRow.purged_seq).where(TaskOwnerRow.user_id == "alice")
        )
    assert alices["id"] not in left
    assert bobs["id"] in left  # another user's are left to the purge command
    assert purged_seq > 0


def test_purge_removes_expired_idempotency_keys_only(
    client: TestClient, alice: dict[str, str], engine: Engine
) -> None:
    for key in ("old", "new"):
        client.post("/api/tasks", json={"title": key}, headers=alice | {"Idempotency-Key": key})
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with engine.begin() as connection:
        connection.execute(
            update(IdempotencyKeyRow).where(IdempotencyKeyRow.key == "old").values(expires_at=past)
        )
    assert TaskStore(engine, quota=100).purge().idempotency_keys == 1
    with engine.connect() as connection:
        assert list(connection.scalars(select(IdempotencyKeyRow.key))) == ["new"]


def test_restore_counts_against_the_quota(serve: Client) -> None:
    api = serve(auth_secret=SECRET, task_quota=2)
    alice = bearer(make_token("alice", iss=None, aud=None))
    first = api.post("/api/tasks", json={"title": "1"}, headers=alice).json()
    api.delete(f"/api/tasks/{first['id']}", headers=alice)
    for title in ("2", "3"):
        assert api.post("/api/tasks", json={"title": title}, headers=alice).status_code == 201

    response = api.post(f"/api/tasks/{first['id']}/restore", headers=alice)

    assert response.status_code == 409
    assert api.get(f"/api/tasks/{first['id']}", headers=alice).status_code == 404
    assert api.get("/api/tasks", headers=alice).headers["X-Total-Count"] == "2"


def test_the_owner_count_never_includes_deleted_tasks(
    client: TestClient, alice: dict[str, str], create: Create, engine: Engine
) -> None:
    ids = [create()["id"] for _ in range(4)]
    client.delete(f"/api/tasks/{ids[0]}", headers=alice)
    client.delete(f"/api/tasks/{ids[1]}", headers=alice)
    client.post(f"/api/tasks/{ids[1]}/restore", headers=alice)
    client.post(f"/api/tasks/{ids[1]}/restore", headers=alice)  # a repeated undo
    with engine.connect() as connection:
        counted = connection.scalar(select(TaskOwnerRow.task_count))
        live = connection.scalar(
            select(func.count()).select_from(TaskRow).where(TaskRow.deleted_at.is_(None))
        )
    assert counted == live == 3
