"""One user can neither see nor touch another's tasks, through any operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

# (method, path under a family, body)
ITEM_OPERATIONS: list[tuple[str, str, Any]] = [
    ("GET", "/{id}", None),
    ("PATCH", "/{id}", {"title": "hijacked"}),
    ("PUT", "/{id}", {"title": "hijacked"}),
    ("DELETE", "/{id}", None),
    ("PATCH", "/{id}/complete", None),
    ("POST", "/{id}/complete", {"completed": True}),
    ("POST", "/{id}/restore", None),
]
IDS = [f"{method} {path}" for method, path, _ in ITEM_OPERATIONS]


@pytest.fixture
def alices_task(create: Callable[..., dict[str, Any]], bob: dict[str, str]) -> dict[str, Any]:
    # Bob keeps tasks too: his writes must be refused by the owner check on alice's row itself,
    # not because he has never written anything.
    create(headers=bob, title="bob's own")
    return create(title="alice's secret", description="private", tags=["x"])


def _unchanged(client: TestClient, alice: dict[str, str], task: dict[str, Any]) -> None:
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).json() == task


@pytest.mark.parametrize(("method", "path", "body"), ITEM_OPERATIONS, ids=IDS)
@pytest.mark.parametrize("family", ["/api/tasks", "/api/bob/tasks"])
def test_other_users_task_is_404(
    client: TestClient,
    alice: dict[str, str],
    bob: dict[str, str],
    alices_task: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    family: str,
) -> None:
    url = family + path.format(id=alices_task["id"])
    tag = client.get(f"/api/tasks/{alices_task['id']}", headers=alice).headers["ETag"]
    for conditions in ({}, {"If-Match": tag}, {"If-Match": '"1-999"'}):
        response = client.request(method, url, json=body, headers=bob | conditions)
        assert response.status_code == 404, conditions
        assert "alice" not in response.text
    _unchanged(client, alice, alices_task)


@pytest.mark.parametrize("family", ["/api/tasks", "/api/bob/tasks"])
def test_other_users_deleted_task_cannot_be_restored(
    client: TestClient,
    alice: dict[str, str],
    bob: dict[str, str],
    alices_task: dict[str, Any],
    family: str,
) -> None:
    client.delete(f"/api/tasks/{alices_task['id']}", headers=alice)
    response = client.post(f"{family}/{alices_task['id']}/restore", headers=bob)
    assert response.status_code == 404
    assert "alice" not in response.text
    assert client.get(f"/api/tasks/{alices_task['id']}", headers=alice).status_code == 404


@pytest.mark.parametrize(("method", "path", "body"), ITEM_OPERATIONS, ids=IDS)
def test_other_users_path_is_403(
    client: TestClient,
    alice: dict[str, str],
    bob: dict[str, str],
    alices_task: dict[str, Any],
    method: str,
    path: str,
    body: Any,
) -> None:
    url = "/api/alice/tasks" + path.format(id=alices_task["id"])
    response = client.request(method, url, json=body, headers=bob)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    _unchanged(client, alice, alices_task)


def test_other_users_collection_path_is_403(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], alices_task: dict[str, Any]
) -> None:
    assert client.get("/api/alice/tasks", headers=bob).status_code == 403
    response = client.post("/api/alice/tasks", json={"title": "planted"}, headers=bob)
    assert response.status_code == 403
    assert client.get("/api/tasks", headers=alice).json() == [alices_task]


def test_lists_show_only_own_tasks(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], alices_task: dict[str, Any]
) -> None:
    for url in ("/api/tasks", "/api/bob/tasks"):
        response = client.get(url, headers=bob)
        assert [task["title"] for task in response.json()] == ["bob's own"]
        assert response.headers["X-Total-Count"] == "1"
    assert client.get("/api/tasks?q=secret", headers=bob).json() == []
    feed = client.get("/api/tasks/changes", headers=bob).json()["changes"]
    assert [change["task"]["user_id"] for change in feed] == ["bob"]


def test_created_task_belongs_to_the_token_subject(
    client: TestClient, bob: dict[str, str], alice: dict[str, str]
) -> None:
    task = client.post("/api/bob/tasks", json={"title": "bob's"}, headers=bob).json()
    assert task["user_id"] == "bob"
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).status_code == 404
