"""Each user keeps at most TASK_QUOTA tasks: one more is a 409, never a silent drop."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select, text
from starlette.testclient import TestClient

from storage import build_engine
from storage.migrate import upgrade
from storage.models import TaskOwnerRow
from tests.conftest import SECRET, Client, bearer, make_token

ALICE = bearer(make_token("alice", iss=None, aud=None))
BOB = bearer(make_token("bob", iss=None, aud=None))


def quota_api(serve: Client, quota: int) -> TestClient:
    return serve(auth_secret=SECRET, task_quota=quota)


def test_the_create_past_the_quota_is_409(serve: Client) -> None:
    api = quota_api(serve, 3)
    ids = [
        api.post("/api/tasks", json={"title": f"t{i}"}, headers=ALICE).json()["id"]
        for i in range(3)
    ]
    response = api.post("/api/tasks", json={"title": "one too many"}, headers=ALICE)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "3 tasks" in response.json()["detail"]
    assert len(api.get("/api/tasks", headers=ALICE).json()) == 3
    # Another user has a quota of their own.
    assert api.post("/api/alice/tasks", json={"title": "x"}, headers=ALICE).status_code == 409
    assert api.post("/api/tasks", json={"title": "bob's"}, headers=BOB).status_code == 201
    # Deleting frees a place.
    assert api.delete(f"/api/tasks/{ids[0]}", headers=ALICE).status_code == 204
    assert api.post("/api/tasks", json={"title": "fits again"}, headers=ALICE).status_code == 201


def test_concurrent_creates_never_pass_the_quota(serve: Client) -> None:
    api = quota_api(serve, 10)

    def create(i: int) -> int:
        return api.post("/api/tasks", json={"title": f"t{i}"}, headers=ALICE).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, range(30)))
    assert statuses.count(201) == 10
    assert statuses.count(409) == 20
    assert api.get("/api/tasks", headers=ALICE).headers["X-Total-Count"] == "10"


def test_a_user_over_a_lowered_quota_can_still_delete(serve: Client, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/lowered.db"
    before = serve(auth_secret=SECRET, task_quota=5, database_url=database)
    ids = [
        before.post("/api/tasks", json={"title": "t"}, headers=ALICE).json()["id"] for _ in range(5)
    ]
    after = serve(auth_secret=SECRET, task_quota=2, database_url=database)
    assert after.post("/api/tasks", json={"title": "no room"}, headers=ALICE).status_code == 409
    for task_id in ids[:4]:
        assert after.delete(f"/api/tasks/{task_id}", headers=ALICE).status_code == 204
    assert after.post("/api/tasks", json={"title": "room again"}, headers=ALICE).status_code == 201


def test_failed_deletes_do_not_free_a_place(serve: Client) -> None:
    api = quota_api(serve, 1)
    task = api.post("/api/tasks", json={"title": "only"}, headers=ALICE).json()
    assert api.delete(f"/api/tasks/{task['id']}", headers=BOB).status_code == 404
    assert api.delete("/api/tasks/999999", headers=ALICE).status_code == 404
    assert api.post("/api/tasks", json={"title": "second"}, headers=ALICE).status_code == 409


def test_the_migration_counts_existing_tasks(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0001")
    row = {
        "title": "t",
        "completed": False,
        "priority": 2,
        "tags": "[]",
        "created_at": "2026-01-01 00:00:00.000000",
        "updated_at": "2026-01-01 00:00:00.000000",
    }
    with engine.begin() as connection:
        for user, count in (("alice", 3), ("bob", 1)):
            for _ in range(count):
                connection.execute(
                    text(
                        "INSERT INTO tasks (user_id, title, completed, priority, tags, "
                        "created_at, updated_at) VALUES (:user_id, :title, :completed, "
                        ":priority, :tags, :created_at, :updated_at)"
                    ),
                    {**row, "user_id": user},
                )
    upgrade(engine)
    with engine.connect() as connection:
        counts = dict(
            connection.execute(select(TaskOwnerRow.user_id, TaskOwnerRow.task_count)).all()
        )
    assert counts == {"alice": 3, "bob": 1}
    engine.dispose()
