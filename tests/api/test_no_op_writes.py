"""A write whose result equals the stored task is no change: same version, same updated_at,
nothing in the feed, the same list tag, and no 412 for the other tabs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

Create = Callable[..., dict[str, Any]]

STORED = {
    "title": "Buy milk",
    "description": "two litres",
    "priority": "high",
    "tags": ["home", "errands"],
    "due_date": "2030-01-02T03:04:05Z",
    "completed": True,
}
# Each asks for what is stored already.
NO_OPS = {
    "PATCH the same values": ("PATCH", "", STORED),
    "PUT the same values": ("PUT", "", STORED),
    "PATCH one same field": ("PATCH", "", {"priority": "high"}),
    "PATCH an empty object": ("PATCH", "", {}),
    "PATCH the title with its surrounding spaces": ("PATCH", "", {"title": "  Buy milk "}),
    "PATCH the due date at another offset": (
        "PATCH",
        "",
        {"due_date": "2030-01-02T05:04:05+02:00"},
    ),
    "PATCH completed: true": ("PATCH", "", {"completed": True}),
    "PATCH /complete with completed: true": ("PATCH", "/complete", {"completed": True}),
    "POST /complete with completed: true": ("POST", "/complete", {"completed": True}),
    "PATCH a whole task sent back": ("PATCH", "", None),
}


def snapshot(client: TestClient, headers: dict[str, str], url: str) -> dict[str, Any]:
    task = client.get(url, headers=headers)
    listing = client.get("/api/tasks", headers=headers)
    changes = client.get("/api/tasks/changes", headers=headers).json()
    return {
        "task": task.json(),
        "etag": task.headers["etag"],
        "list_etag": listing.headers["etag"],
        "cursor": changes["cursor"],
    }


@pytest.mark.parametrize(("method", "suffix", "body"), NO_OPS.values(), ids=NO_OPS)
@pytest.mark.parametrize("family", ["/api/tasks", "/api/alice/tasks"], ids=["own", "by-user-id"])
def test_a_write_that_changes_nothing_writes_nothing(
    client: TestClient,
    alice: dict[str, str],
    create: Create,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    family: str,
) -> None:
    task = create(**STORED)
    url = f"/api/tasks/{task['id']}"
    before = snapshot(client, alice, url)
    sent = before["task"] if body is None else body
    response = client.request(method, f"{family}/{task['id']}{suffix}", json=sent, headers=alice)
    assert response.status_code == 200, response.text
    assert response.json() == before["task"]
    assert response.headers["etag"] == before["etag"]
    assert snapshot(client, alice, url) == before


def test_a_no_op_with_a_stale_if_match_answers_the_current_task(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    """Two tabs complete the same task: the second asked for what is already so."""
    task = create(title="t")
    url = f"/api/tasks/{task['id']}"
    stale = client.get(url, headers=alice).headers["etag"]
    first = client.post(f"{url}/complete", json={"completed": True}, headers=alice)
    second = client.post(
        f"{url}/complete", json={"completed": True}, headers={**alice, "If-Match": stale}
    )
    assert second.status_code == 200, second.text
    assert second.headers["etag"] == first.headers["etag"]
    # A real change with the stale tag is still refused.
    third = client.patch(url, json={"title": "other"}, headers={**alice, "If-Match": stale})
    assert third.status_code == 412


def test_after_a_no_op_the_other_tab_writes_without_a_412(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(title="t", completed=True)
    url = f"/api/tasks/{task['id']}"
    other_tab = client.get(url, headers=alice).headers["etag"]
    client.patch(url, json={"completed": True}, headers=alice)
    renamed = client.patch(url, json={"title": "u"}, headers={**alice, "If-Match": other_tab})
    assert renamed.status_code == 200, renamed.text


@pytest.mark.parametrize(
    ("body", "changed"),
    [
        ({"completed": False}, "completed"),
        ({"title": "Buy bread"}, "title"),
        ({"tags": ["errands", "home"]}, "tags"),
    ],
)
def test_a_write_that_changes_a_field_is_a_change(
    client: TestClient, alice: dict[str, str], create: Create, body: dict[str, Any], changed: str
) -> None:
    task = create(**STORED)
    url = f"/api/tasks/{task['id']}"
    before = snapshot(client, alice, url)
    response = client.patch(url, json=body, headers=alice)
    assert response.json()[changed] == body[changed]
    after = snapshot(client, alice, url)
    assert after["etag"] != before["etag"]
    assert after["list_etag"] != before["list_etag"]
    assert after["cursor"] != before["cursor"]
    assert after["task"]["updated_at"] >= before["task"]["updated_at"]


def test_toggling_is_always_a_change(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(title="t")
    url = f"/api/tasks/{task['id']}"
    before = snapshot(client, alice, url)
    client.post(f"{url}/complete", headers=alice)
    client.post(f"{url}/complete", headers=alice)
    after = snapshot(client, alice, url)
    assert after["task"]["completed"] is False
    assert after["etag"] != before["etag"]


def test_a_no_op_on_a_missing_task_is_404(client: TestClient, alice: dict[str, str]) -> None:
    assert client.patch("/api/tasks/999999", json={}, headers=alice).status_code == 404
