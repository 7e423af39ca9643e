"""Every operation, on both path families."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient


def parse_time(value: str) -> dt.datetime:
    assert value.endswith("Z"), value
    return dt.datetime.fromisoformat(value)


def test_create_returns_201_task_and_location(
    client: TestClient, alice: dict[str, str], base: str
) -> None:
    response = client.post(base, json={"title": "Buy milk"}, headers=alice)
    assert response.status_code == 201
    task = response.json()
    assert response.headers["Location"] == f"{base}/{task['id']}"
    assert task["user_id"] == "alice"
    assert task["title"] == "Buy milk"
    created = parse_time(task["created_at"])
    assert task["updated_at"] == task["created_at"]
    assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert client.get(response.headers["Location"], headers=alice).json() == task


def test_create_applies_defaults(client: TestClient, alice: dict[str, str]) -> None:
    task = client.post("/api/tasks", json={"title": "x"}, headers=alice).json()
    assert task["completed"] is False
    assert task["completed_at"] is None
    assert task["priority"] == "medium"
    assert task["tags"] == []
    assert task["description"] is None
    assert task["due_date"] is None


def test_create_with_every_field(client: TestClient, alice: dict[str, str]) -> None:
    body = {
        "title": "  Write report  ",
        "description": "line one\n\tline two",
        "completed": True,
        "priority": "high",
        "tags": ["work", "urgent"],
        "due_date": "2030-05-01T12:30:00+02:00",
    }
    task = client.post("/api/tasks", json=body, headers=alice).json()
    assert task["title"] == "Write report"
    assert task["description"] == "line one\n\tline two"
    assert task["completed"] is True
    assert task["completed_at"] is not None
    assert task["priority"] == "high"
    assert task["tags"] == ["work", "urgent"]
    assert task["due_date"] == "2030-05-01T10:30:00.000000Z"


def test_read_only_fields_in_a_body_are_ignored(
    client: TestClient, alice: dict[str, str], create: Callable[..., dict[str, Any]]
) -> None:
    forged = {
        "id": 999999,
        "user_id": "mallory",
        "created_at": "2000-01-01T00:00:00Z",
        "updated_at": "2000-01-01T00:00:00Z",
        "completed_at": "2000-01-01T00:00:00Z",
    }
    task = client.post("/api/tasks", json={"title": "mine", **forged}, headers=alice).json()
    assert task["id"] != 999999
    assert task["user_id"] == "alice"
    assert not task["created_at"].startswith("2000")
    assert task["completed_at"] is None

    # A frontend sending back the whole task it read, with a changed title.
    whole = {**task, **forged, "title": "renamed"}
    updated = client.put(f"/api/tasks/{task['id']}", json=whole, headers=alice).json()
    assert updated["title"] == "renamed"
    assert updated["id"] == task["id"]
    assert updated["user_id"] == "alice"
    assert updated["created_at"] == task["created_at"]
    assert updated["completed_at"] is None
    assert client.get("/api/tasks/999999", headers=alice).status_code == 404


def test_get(client: TestClient, alice: dict[str, str], create: Callable, base: str) -> None:
    task = create(title="find me")
    response = client.get(f"{base}/{task['id']}", headers=alice)
    assert response.status_code == 200
    assert response.json() == task


def test_get_missing_task_is_404(client: TestClient, alice: dict[str, str], base: str) -> None:
    response = client.get(f"{base}/424242", headers=alice)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_is_partial(
    client: TestClient, alice: dict[str, str], create: Callable, base: str, method: str
) -> None:
    task = create(
        title="original",
        description="keep me",
        priority="low",
        tags=["a"],
        due_date="2031-01-01T00:00:00Z",
    )
    response = client.request(
        method, f"{base}/{task['id']}", json={"title": "changed"}, headers=alice
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["title"] == "changed"
    for field in ("description", "priority", "tags", "due_date", "completed", "created_at"):
        assert updated[field] == task[field], field
    assert parse_time(updated["updated_at"]) > parse_time(task["updated_at"])
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).json() == updated


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_update_null_clears_nullable_fields(
    client: TestClient, alice: dict[str, str], create: Callable, method: str
) -> None:
    task = create(description="text", due_date="2031-01-01T00:00:00Z")
    updated = client.request(
        method,
        f"/api/tasks/{task['id']}",
        json={"description": None, "due_date": None},
        headers=alice,
    ).json()
    assert updated["description"] is None
    assert updated["due_date"] is None
    assert updated["title"] == task["title"]


@pytest.mark.parametrize("field", ["title", "completed", "priority", "tags"])
def test_update_null_on_a_required_field_is_422(
    client: TestClient, alice: dict[str, str], create: Callable, field: str
) -> None:
    task = create()
    response = client.patch(f"/api/tasks/{task['id']}", json={field: None}, headers=alice)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == f"#/{field}"
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).json() == task


def test_update_every_writable_field(
    client: TestClient, alice: dict[str, str], create: Callable
) -> None:
    task = create()
    changes = {
        "title": "new",
        "description": "d",
        "completed": True,
        "priority": "high",
        "tags": ["x", "y"],
        "due_date": "2032-02-02T02:02:02.5Z",
    }
    updated = client.patch(f"/api/tasks/{task['id']}", json=changes, headers=alice).json()
    assert {k: updated[k] for k in changes} == {
        **changes,
        "due_date": "2032-02-02T02:02:02.500000Z",
    }
    assert updated["completed_at"] is not None


def test_completing_sets_and_clears_completed_at(
    client: TestClient, alice: dict[str, str], create: Callable
) -> None:
    task = create()
    url = f"/api/tasks/{task['id']}"
    done = client.patch(url, json={"completed": True}, headers=alice).json()
    first_completed_at = done["completed_at"]
    assert first_completed_at is not None
    # Completing again (e.g. a PUT of the whole task) keeps the first completion time.
    again = client.put(url, json={"completed": True, "title": "t2"}, headers=alice).json()
    assert again["completed_at"] == first_completed_at
    undone = client.patch(url, json={"completed": False}, headers=alice).json()
    assert undone["completed"] is False
    assert undone["completed_at"] is None


def test_delete(client: TestClient, alice: dict[str, str], create: Callable, base: str) -> None:
    task = create()
    response = client.delete(f"{base}/{task['id']}", headers=alice)
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).status_code == 404
    assert client.delete(f"{base}/{task['id']}", headers=alice).status_code == 404


def test_ids_of_deleted_tasks_are_never_reused(
    client: TestClient, alice: dict[str, str], create: Callable
) -> None:
    newest = create()
    assert client.delete(f"/api/tasks/{newest['id']}", headers=alice).status_code == 204
    assert create()["id"] > newest["id"]


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_complete_without_body_toggles(
    client: TestClient, alice: dict[str, str], create: Callable, base: str, method: str
) -> None:
    task = create()
    url = f"{base}/{task['id']}/complete"
    first = client.request(method, url, headers=alice)
    assert first.status_code == 200
    assert first.json()["completed"] is True
    assert first.json()["completed_at"] is not None
    second = client.request(method, url, headers=alice).json()
    assert second["completed"] is False
    assert second["completed_at"] is None
    assert client.request(method, url, json={}, headers=alice).json()["completed"] is True


@pytest.mark.parametrize("method", ["PATCH", "POST"])
@pytest.mark.parametrize("value", [True, False])
def test_complete_with_body_sets_the_value_idempotently(
    client: TestClient,
    alice: dict[str, str],
    create: Callable,
    base: str,
    method: str,
    value: bool,
) -> None:
    task = create(completed=not value)
    url = f"{base}/{task['id']}/complete"
    for _ in range(2):
        response = client.request(method, url, json={"completed": value}, headers=alice)
        assert response.status_code == 200
        assert response.json()["completed"] is value
        assert (response.json()["completed_at"] is not None) is value


def test_complete_with_a_null_body_is_422(
    client: TestClient, alice: dict[str, str], create: Callable
) -> None:
    task = create()
    headers = {**alice, "Content-Type": "application/json"}
    response = client.post(f"/api/tasks/{task['id']}/complete", content=b"null", headers=headers)
    assert response.status_code == 422
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).json() == task


def test_early_years_are_answered_with_four_digits(
    client: TestClient, alice: dict[str, str]
) -> None:
    body = {"title": "old", "due_date": "0853-06-29T00:10:23.147Z"}
    task = client.post("/api/tasks", json=body, headers=alice).json()
    assert task["due_date"] == "0853-06-29T00:10:23.147000Z"


def test_complete_rejects_other_fields(
    client: TestClient, alice: dict[str, str], create: Callable
) -> None:
    task = create()
    response = client.post(
        f"/api/tasks/{task['id']}/complete", json={"completed": True, "title": "x"}, headers=alice
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"pointer": "#/title", "detail": "unknown field"}]


def test_complete_missing_task_is_404(client: TestClient, alice: dict[str, str]) -> None:
    assert client.post("/api/tasks/77/complete", headers=alice).status_code == 404


def test_list_is_a_plain_array_of_own_tasks(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], create: Callable, base: str
) -> None:
    mine = [create(title=f"t{i}") for i in range(3)]
    create(headers=bob, title="bob's")
    response = client.get(base, headers=alice)
    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "3"
    assert "Link" not in response.headers
    assert response.json() == list(reversed(mine))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/tasks/"),
        ("POST", "/api/tasks/"),
        ("GET", "/api/alice/tasks/"),
        ("GET", "/api/tasks/{id}/"),
        ("PATCH", "/api/alice/tasks/{id}/"),
        ("POST", "/api/tasks/{id}/complete/"),
    ],
)
def test_trailing_slash_is_served_without_redirect(
    client: TestClient, alice: dict[str, str], create: Callable, method: str, path: str
) -> None:
    task = create()
    body = {"title": "slash"} if method in {"POST", "PATCH"} and "complete" not in path else None
    response = client.request(method, path.format(id=task["id"]), json=body, headers=alice)
    assert response.status_code in {200, 201}, response.text
    assert "location" not in response.headers or method == "POST"


def test_wrong_method_is_405_with_allow(client: TestClient, alice: dict[str, str]) -> None:
    response = client.put("/api/tasks", json={}, headers=alice)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert "PUT" not in response.headers["Allow"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/tasks/5/complete", "PATCH, POST"),
        ("POST", "/api/alice/tasks/5", "DELETE, GET, HEAD, PATCH, PUT"),
        ("DELETE", "/api/tasks/tasks", "GET, HEAD, POST"),  # `tasks` is a user id here
    ],
)
def test_allow_lists_exactly_the_methods_of_the_matched_path(
    client: TestClient, alice: dict[str, str], method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path, headers=alice)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed


def test_unknown_path_is_404_problem(client: TestClient, alice: dict[str, str]) -> None:
    response = client.get("/api/nothing/here/at/all", headers=alice)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_health_needs_no_token(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_docs_and_spec_are_served(client: TestClient) -> None:
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["openapi"] == "3.0.3"
    assert "/tasks/{task_id}/complete" in spec.json()["paths"]


def test_bodies_are_compact_utf8_json_ending_in_a_newline(
    client: TestClient, alice: dict[str, str]
) -> None:
    created = client.post("/api/tasks", json={"title": "Café ☕"}, headers=alice)
    assert created.status_code == 201
    # Written by orjson (todo_api/web/json_bodies.py): no escapes for what UTF-8 carries, no
    # spaces between tokens.
    assert '"title":"Café ☕"'.encode() in created.content
    assert created.content.endswith(b"}\n")
    listed = client.get("/api/tasks", headers=alice)
    assert listed.content.startswith(b'[{"id":')
