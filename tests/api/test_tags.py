"""The user's tags: counts by status that follow every write, paging, and renaming."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, event
from starlette.testclient import TestClient

from storage import TaskStore
from tests.conftest import bearer, make_token

Create = Callable[..., dict[str, Any]]

TAG_BASES = ["/api/tags", "/api/alice/tags"]


def counts(client: TestClient, headers: dict[str, str], base: str = "/api/tags") -> list[Any]:
    response = client.get(base, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["X-Total-Count"] == str(len(response.json()))
    return [(t["tag"], t["pending"], t["completed"]) for t in response.json()]


@pytest.mark.parametrize("base", TAG_BASES)
def test_tags_are_counted_by_status_and_sorted_by_use(
    client: TestClient, alice: dict[str, str], create: Create, base: str
) -> None:
    create(tags=["work", "urgent"])
    create(tags=["work"], completed=True)
    create(tags=["home", "work"])
    create(tags=["home"])
    create(tags=[])
    create(tags=["Zebra"], headers=bearer(make_token("bob-tags")))  # another user's
    assert counts(client, alice, base) == [
        ("work", 2, 1),
        ("home", 2, 0),
        ("urgent", 1, 0),
    ]


def test_counts_follow_creates_updates_deletes_and_restores(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    first = create(tags=["a", "b"])
    second = create(tags=["a"])
    assert counts(client, alice) == [("a", 2, 0), ("b", 1, 0)]
    client.patch(f"/api/tasks/{first['id']}", json={"tags": ["b", "c"]}, headers=alice)
    assert counts(client, alice) == [("a", 1, 0), ("b", 1, 0), ("c", 1, 0)]
    client.post(f"/api/tasks/{second['id']}/complete", headers=alice)
    assert counts(client, alice) == [("a", 0, 1), ("b", 1, 0), ("c", 1, 0)]
    client.delete(f"/api/tasks/{first['id']}", headers=alice)
    assert counts(client, alice) == [("a", 0, 1)]
    client.post(f"/api/tasks/{first['id']}/restore", headers=alice)
    assert counts(client, alice) == [("a", 0, 1), ("b", 1, 0), ("c", 1, 0)]


def test_tags_are_paged_with_a_link_and_a_total(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    for n in range(7):
        create(tags=[f"t{i}" for i in range(n + 1)])  # t0 on 7 tasks, t1 on 6, ...
    seen: list[str] = []
    url: str | None = "/api/tags?limit=3"
    while url is not None:
        response = client.get(url, headers=alice)
        assert response.headers["X-Total-Count"] == "7"
        seen += [t["tag"] for t in response.json()]
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert seen == [f"t{i}" for i in range(7)]


def test_ties_in_use_are_ordered_by_name_across_pages(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    create(tags=["d", "b", "c", "a"])
    first = client.get("/api/tags?limit=2", headers=alice)
    link = first.headers["Link"]
    second = client.get(link[1 : link.index(">")], headers=alice)
    assert [t["tag"] for t in first.json() + second.json()] == ["a", "b", "c", "d"]


def test_a_cursor_that_is_not_a_tag_cursor_is_422(
    client: TestClient, alice: dict[str, str]
) -> None:
    response = client.get("/api/tags?cursor=eyJhZnRlciI6N30", headers=alice)
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "cursor"


@pytest.mark.parametrize("base", TAG_BASES)
def test_a_rename_writes_every_tagged_task_once_in_one_go(
    client: TestClient, alice: dict[str, str], create: Create, base: str
) -> None:
    one = create(tags=["wrk", "urgent"])
    two = create(tags=["wrk", "work"], completed=True)  # has both: keeps one
    other = create(tags=["home"])
    cursor = client.get("/api/tasks/changes", headers=alice).json()["cursor"]
    response = client.post(f"{base}/wrk/rename", json={"to": "work"}, headers=alice)
    assert response.status_code == 200, response.text
    assert response.json() == {"tag": "work", "pending": 1, "completed": 1}
    tasks = {t["id"]: t for t in client.get("/api/tasks", headers=alice).json()}
    assert tasks[one["id"]]["tags"] == ["work", "urgent"]
    assert tasks[two["id"]]["tags"] == ["work"]
    assert tasks[other["id"]] == other
    changes = client.get(f"/api/tasks/changes?cursor={cursor}", headers=alice).json()["changes"]
    assert sorted(change["task"]["id"] for change in changes) == sorted([one["id"], two["id"]])
    assert tasks[one["id"]]["updated_at"] > one["updated_at"]
    versions = {t["id"]: client.get(f"/api/tasks/{t['id']}", headers=alice) for t in (one, two)}
    assert versions[one["id"]].headers["ETag"] != f'"{one["id"]}-1"'
    assert versions[two["id"]].headers["ETag"] != f'"{two["id"]}-1"'
    assert counts(client, alice) == [("work", 1, 1), ("home", 1, 0), ("urgent", 1, 0)]


def test_renaming_a_tag_nobody_has_is_404_and_to_itself_changes_nothing(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(tags=["same"])
    missing = client.post("/api/tags/nope/rename", json={"to": "x"}, headers=alice)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    itself = client.post("/api/tags/same/rename", json={"to": "same"}, headers=alice)
    assert itself.json() == {"tag": "same", "pending": 1, "completed": 0}
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).json() == task


def test_a_rename_reaches_only_the_users_own_tasks(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    bob = bearer(make_token("bob-rename"))
    bobs = create(tags=["shared"], headers=bob)
    create(tags=["shared"])
    client.post("/api/tags/shared/rename", json={"to": "mine"}, headers=alice)
    assert client.get(f"/api/tasks/{bobs['id']}", headers=bob).json()["tags"] == ["shared"]
    forbidden = client.post("/api/bob-rename/tags/shared/rename", json={"to": "x"}, headers=alice)
    assert forbidden.status_code == 403


def test_a_rename_body_is_validated(client: TestClient, alice: dict[str, str]) -> None:
    for body in ({}, {"to": ""}, {"to": "x" * 31}, {"to": "a", "extra": 1}, {"to": " "}):
        response = client.post("/api/tags/a/rename", json=body, headers=alice)
        assert response.status_code == 422, body


def test_a_tag_with_unicode_is_renamed_through_a_percent_encoded_path(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    create(tags=["café ☕"])
    response = client.post(
        "/api/tags/caf%C3%A9%20%E2%98%95/rename", json={"to": "tea"}, headers=alice
    )
    assert response.status_code == 200
    assert counts(client, alice) == [("tea", 1, 0)]


def test_a_rename_that_fails_part_way_writes_nothing(
    client: TestClient, alice: dict[str, str], create: Create, engine: Engine
) -> None:
    """One transaction: the second task's write fails, and the first one's is undone too."""
    first, second = create(tags=["old"]), create(tags=["old"])
    writes = []

    def fail_the_second(_c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("UPDATE tasks SET tags"):
            writes.append(statement)
            if len(writes) == 2:
                raise RuntimeError("the database went away")

    event.listen(engine, "before_cursor_execute", fail_the_second)
    try:
        with pytest.raises(RuntimeError):
            TaskStore(engine, quota=100).rename_tag("alice", "old", "new")
    finally:
        event.remove(engine, "before_cursor_execute", fail_the_second)
    assert len(writes) == 2
    for task in (first, second):
        assert client.get(f"/api/tasks/{task['id']}", headers=alice).json() == task
    assert counts(client, alice) == [("old", 2, 0)]
