"""Lists filtered by status count their total from the owner's kept counts (no count(*)), and
those counts follow every kind of write, concurrent ones included."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from storage import TaskQuery, TaskStore, build_engine, upgrade


def _totals(client: TestClient, headers: dict[str, str]) -> dict[str, tuple[int, int]]:
    """For each status: (X-Total-Count, how many tasks the list really has)."""
    found = {}
    for status in ("all", "pending", "completed"):
        response = client.get(
            "/api/tasks", params={"status": status, "limit": 100}, headers=headers
        )
        assert response.status_code == 200, response.text
        found[status] = (int(response.headers["X-Total-Count"]), len(response.json()))
    return found


def _assert_totals(
    client: TestClient, headers: dict[str, str], pending: int, completed: int
) -> None:
    assert _totals(client, headers) == {
        "all": (pending + completed, pending + completed),
        "pending": (pending, pending),
        "completed": (completed, completed),
    }


def test_status_totals_follow_every_kind_of_write(
    client: TestClient,
    alice: dict[str, str],
    bob: dict[str, str],
    create: Callable[..., dict[str, Any]],
) -> None:
    create(headers=bob, title="bob's", completed=True)
    first = create(title="first")
    second = create(title="second", completed=True)
    create(title="third")
    _assert_totals(client, alice, pending=2, completed=1)

    def write(method: str, path: str, **kwargs: Any) -> None:
        response = client.request(method, f"/api/tasks/{path}", headers=alice, **kwargs)
        assert response.status_code in (200, 204), response.text

    steps: list[tuple[str, str, dict[str, Any], tuple[int, int]]] = [
        ("POST", f"{first['id']}/complete", {}, (1, 2)),  # toggle on
        ("POST", f"{first['id']}/complete", {"json": {"completed": True}}, (1, 2)),  # already
        ("PATCH", f"{first['id']}", {"json": {"completed": False}}, (2, 1)),
        ("PUT", f"{first['id']}", {"json": {"completed": True}}, (1, 2)),
        ("PATCH", f"{first['id']}", {"json": {"title": "renamed"}}, (1, 2)),
        ("POST", f"{second['id']}/complete", {"json": {"completed": False}}, (2, 1)),
        ("POST", f"{second['id']}/complete", {}, (1, 2)),  # toggle back on
        ("DELETE", f"{second['id']}", {}, (1, 1)),  # a completed task goes
        ("POST", f"{second['id']}/restore", {}, (1, 2)),  # and comes back completed
        ("POST", f"{second['id']}/restore", {}, (1, 2)),  # restoring a live task: no change
        ("DELETE", f"{first['id']}", {}, (1, 1)),
    ]
    for method, path, kwargs, (pending, completed) in steps:
        write(method, path, **kwargs)
        _assert_totals(client, alice, pending=pending, completed=completed)
    _assert_totals(client, bob, pending=0, completed=1)


def test_status_totals_hold_after_concurrent_writes(
    client: TestClient, alice: dict[str, str], create: Callable[..., dict[str, Any]]
) -> None:
    tasks = [create(title=f"t{n}", completed=n % 2 == 0)["id"] for n in range(6)]
    randomly = random.Random(7)  # noqa: S311 (a test's reproducible plan)
    plan = [(randomly.choice(tasks), randomly.randrange(4)) for _ in range(96)]

    def write(step: tuple[int, int]) -> None:
        task_id, kind = step
        url = f"/api/tasks/{task_id}"
        if kind == 0:
            response = client.post(f"{url}/complete", headers=alice)
        elif kind == 1:
            response = client.patch(url, json={"completed": True}, headers=alice)
        elif kind == 2:
            response = client.put(url, json={"completed": False}, headers=alice)
        else:
            response = client.post(f"{url}/complete", json={"completed": True}, headers=alice)
        assert response.status_code == 200, response.text

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, plan))
    states = [client.get(f"/api/tasks/{t}", headers=alice).json()["completed"] for t in tasks]
    _assert_totals(client, alice, pending=states.count(False), completed=states.count(True))


def test_the_migration_counts_existing_completed_tasks(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0003")
    with engine.begin() as connection:
        for seq, (completed, deleted) in enumerate(
            ((1, None), (1, None), (0, None), (1, "2026-01-02 00:00:00")), start=1
        ):
            connection.exec_driver_sql(
                "INSERT INTO tasks (user_id, title, completed, priority, tags, created_at,"
                " updated_at, seq, deleted_at) VALUES ('alice', 't', ?, 2, '[]',"
                " '2026-01-01 00:00:00', '2026-01-01 00:00:00', ?, ?)",
                (completed, seq, deleted),
            )
        connection.exec_driver_sql(
            "INSERT INTO task_owners (user_id, task_count) VALUES ('alice', 3)"
        )
    upgrade(engine)
    store = TaskStore(engine, quota=100)
    totals = {
        status: store.list_tasks("alice", TaskQuery(status=status)).total
        for status in ("all", "pending", "completed")
    }
    assert totals == {"all": 3, "pending": 1, "completed": 2}
    engine.dispose()
