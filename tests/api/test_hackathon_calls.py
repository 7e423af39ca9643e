"""What the README's "coming from a typical hackathon backend" table says of each call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

Create = Callable[..., dict[str, Any]]


def test_the_calls_that_work_unchanged(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    # Create with title and description, by user id in the path.
    made = client.post("/api/alice/tasks", json={"title": "a", "description": "d"}, headers=alice)
    assert made.status_code == 201
    task_id = made.json()["id"]
    # A whole task sent back on PUT, completed as a field.
    task = made.json() | {"completed": True}
    assert client.put(f"/api/alice/tasks/{task_id}", json=task, headers=alice).json()["completed"]
    # A toggle with no body.
    toggled = client.patch(f"/api/alice/tasks/{task_id}/complete", headers=alice)
    assert toggled.json()["completed"] is False
    # Other backends' query parameters and cache-busters are ignored: 200, not 422.
    for query in ("sort_by=created", "offset=20", "_=1712345678", "page=2&per_page=10"):
        assert client.get(f"/api/tasks?{query}", headers=alice).status_code == 200


def test_the_list_is_a_plain_array_not_an_envelope(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    create()
    body = client.get("/api/tasks", headers=alice).json()
    assert isinstance(body, list)


def test_offset_is_ignored_so_paging_goes_by_link(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    for i in range(3):
        create(title=f"t{i}")
    first = client.get("/api/tasks?limit=2", headers=alice)
    with_offset = client.get("/api/tasks?limit=2&offset=2", headers=alice)
    assert with_offset.json() == first.json()
    assert "cursor=" in first.headers["Link"]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_toggle_path_is_not_found(
    client: TestClient, alice: dict[str, str], create: Create, method: str
) -> None:
    url = f"/api/tasks/{create()['id']}/toggle"
    assert client.request(method, url, headers=alice).status_code == 404


def test_a_versioned_prefix_reads_as_another_users_path(
    client: TestClient, alice: dict[str, str]
) -> None:
    """`/api/v1/tasks` is `/api/{user_id}/tasks` with the user id `v1`: not alice's."""
    assert client.get("/api/v1/tasks", headers=alice).status_code == 403


@pytest.mark.parametrize(
    ("query", "body", "named"),
    [
        ("status=active", None, "status"),
        ("priority=High", None, "priority"),
        (None, {"title": "t", "priority": "High"}, "#/priority"),
    ],
)
def test_values_of_other_backends_are_422_naming_the_field(
    client: TestClient,
    alice: dict[str, str],
    query: str | None,
    body: dict[str, Any] | None,
    named: str,
) -> None:
    if body is None:
        response = client.get(f"/api/tasks?{query}", headers=alice)
    else:
        response = client.post("/api/tasks", json=body, headers=alice)
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert named in (error.get("parameter"), error.get("pointer"))
