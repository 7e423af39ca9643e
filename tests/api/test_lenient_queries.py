"""Query parameters an operation does not declare are ignored; unknown body fields are not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from todo_api.web.validators import declared_query

# What frontends written for other backends send: a cache-buster, other backends' names, and
# names that are also a handler's arguments (`user` is the token's subject).
FOREIGN = "_=1712345678&sort_by=created&user=bob&user_id=bob&task_id=1&body=x&Status=done"


def test_a_dashboard_query_with_foreign_parameters_lists_as_without_them(
    client: TestClient, alice: dict[str, str], create: Callable[..., dict[str, Any]]
) -> None:
    create(title="one")
    create(title="two", completed=True)
    plain = client.get("/api/tasks?status=pending", headers=alice)
    lenient = client.get(f"/api/tasks?status=pending&{FOREIGN}", headers=alice)
    assert lenient.status_code == 200, lenient.text
    assert lenient.json() == plain.json()
    assert [task["title"] for task in lenient.json()] == ["one"]
    assert lenient.headers["etag"] == plain.headers["etag"]


def test_foreign_parameters_are_left_out_of_the_next_page_link(
    client: TestClient, alice: dict[str, str], create: Callable[..., dict[str, Any]]
) -> None:
    create(title="one")
    create(title="two")
    response = client.get(f"/api/tasks?limit=1&{FOREIGN}", headers=alice)
    link = response.headers["link"]
    assert "limit=1" in link
    for name in ("sort_by", "user", "task_id", "body", "_="):
        assert f"{name}=" not in link.replace("limit=", "")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/tasks/{id}", None),
        ("GET", "/api/alice/tasks/{id}", None),
        ("PATCH", "/api/tasks/{id}", {"title": "renamed"}),
        ("PUT", "/api/alice/tasks/{id}", {"title": "renamed"}),
        ("PATCH", "/api/tasks/{id}/complete", {"completed": True}),
        ("POST", "/api/alice/tasks/{id}/complete", None),
        ("POST", "/api/tasks", {"title": "new"}),
        ("GET", "/api/tasks/changes", None),
        ("GET", "/api/alice/tasks/changes", None),
        ("GET", "/api/health", None),
        ("DELETE", "/api/tasks/{id}", None),
        ("POST", "/api/tasks/{id}/restore", None),
    ],
)
def test_every_operation_ignores_parameters_it_does_not_declare(
    client: TestClient,
    alice: dict[str, str],
    create: Callable[..., dict[str, Any]],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    task = create()
    if path.endswith("/restore"):
        client.delete(f"/api/tasks/{task['id']}", headers=alice)
    url = path.format(id=task["id"]) + "?" + FOREIGN
    response = client.request(method, url, json=body, headers=alice)
    assert response.status_code in (200, 201, 204), response.text
    if response.status_code != 204 and "user_id" in response.json():
        assert response.json()["user_id"] == "alice"


def test_declared_parameters_are_still_checked_beside_foreign_ones(
    client: TestClient, alice: dict[str, str]
) -> None:
    response = client.get("/api/tasks?sort_by=created&limit=0", headers=alice)
    assert response.status_code == 422
    assert [error["parameter"] for error in response.json()["errors"]] == ["limit"]


def test_unknown_body_fields_stay_422(client: TestClient, alice: dict[str, str]) -> None:
    response = client.post("/api/tasks?_=1", json={"title": "t", "sort_by": "x"}, headers=alice)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"pointer": "#/sort_by", "detail": "unknown field"}]


def test_declared_query_keeps_declared_pairs_byte_for_byte() -> None:
    query = b"q=caf%C3%A9+au+lait&_=1&%71=x&tag=a%26b&tag=&sort_by"
    kept = b"q=caf%C3%A9+au+lait&%71=x&tag=a%26b&tag="
    assert declared_query(query, frozenset({"q", "tag"})) == kept
