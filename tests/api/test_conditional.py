"""ETags and conditional requests: lost updates refused, unchanged reads answered 304."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from starlette.testclient import TestClient

Create = Callable[..., dict[str, Any]]


def fetch(client: TestClient, url: str, headers: dict[str, str]) -> tuple[dict[str, Any], str]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    return response.json(), response.headers["ETag"]


def test_every_task_answer_carries_a_strong_etag_that_changes_on_each_write(
    client: TestClient, alice: dict[str, str], base: str
) -> None:
    created = client.post(base, json={"title": "v1"}, headers=alice)
    url = created.headers["Location"]
    tags = [created.headers["ETag"]]
    tags.append(client.patch(url, json={"title": "v2"}, headers=alice).headers["ETag"])
    tags.append(client.put(url, json={"title": "v3"}, headers=alice).headers["ETag"])
    tags.append(client.post(f"{url}/complete", headers=alice).headers["ETag"])
    tags.append(client.patch(f"{url}/complete", headers=alice).headers["ETag"])
    tags.append(client.patch(url, json={"title": "v4"}, headers=alice).headers["ETag"])
    assert all(tag.startswith('"') and tag.endswith('"') for tag in tags)  # strong
    assert len(set(tags)) == len(tags)
    assert fetch(client, url, alice)[1] == tags[-1]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"title": "mine"}),
        ("PUT", "", {"title": "mine"}),
        ("PATCH", "/complete", None),
        ("POST", "/complete", {"completed": True}),
        ("DELETE", "", None),
    ],
)
def test_a_stale_if_match_is_412_with_the_current_task_and_nothing_is_written(
    client: TestClient,
    alice: dict[str, str],
    base: str,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    created = client.post(base, json={"title": "original"}, headers=alice)
    url, stale = created.headers["Location"], created.headers["ETag"]
    other_tab = client.patch(url, json={"title": "from another tab"}, headers=alice)
    current = other_tab.headers["ETag"]

    response = client.request(method, url + suffix, json=body, headers=alice | {"If-Match": stale})

    assert response.status_code == 412
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["ETag"] == current
    assert response.json()["task"] == other_tab.json()
    assert fetch(client, url, alice) == (other_tab.json(), current)


@pytest.mark.parametrize(
    ("method", "suffix", "body", "status"),
    [
        ("PATCH", "", {"title": "new"}, 200),
        ("PUT", "", {"title": "new"}, 200),
        ("POST", "/complete", None, 200),
        ("PATCH", "/complete", {"completed": True}, 200),
        ("DELETE", "", None, 204),
    ],
)
def test_a_current_if_match_writes(
    client: TestClient,
    alice: dict[str, str],
    base: str,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    created = client.post(base, json={"title": "old"}, headers=alice)
    url = created.headers["Location"]
    # A list of tags matches if any does.
    tags = f'"0-1", {created.headers["ETag"]}'
    response = client.request(method, url + suffix, json=body, headers=alice | {"If-Match": tags})
    assert response.status_code == status, response.text
    if status == 200:
        assert response.headers["ETag"] != created.headers["ETag"]


def test_if_match_star_means_the_task_exists(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create()
    url = f"/api/tasks/{task['id']}"
    star = alice | {"If-Match": "*"}
    assert client.patch(url, json={"title": "any version"}, headers=star).status_code == 200
    assert client.delete(url, headers=star).status_code == 204
    assert client.delete(url, headers=star).status_code == 404


def test_a_weak_or_foreign_tag_never_matches(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    first, second = create(), create()
    url = f"/api/tasks/{first['id']}"
    tag = fetch(client, url, alice)[1]
    other = fetch(client, f"/api/tasks/{second['id']}", alice)[1]
    # Strong comparison is character by character: "01-01" is not the tag "1-1", and a version
    # past what the column holds is no version at all.
    padded = '"0' + tag.strip('"').replace("-", "-0") + '"'
    huge = f'"{first["id"]}-99999999999999999999"'
    for refused in [f"W/{tag}", other, '"garbage"', padded, huge, f'"{first["id"]}-2147483648"']:
        response = client.patch(url, json={"title": "x"}, headers=alice | {"If-Match": refused})
        assert response.status_code == 412, refused
    assert fetch(client, url, alice)[0]["title"] == first["title"]


def test_if_match_on_a_missing_or_foreign_task_is_404(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], create: Create
) -> None:
    create(headers=bob)  # bob has tasks too: the refusal is the owner check on alice's row
    task = create()
    tag = fetch(client, f"/api/tasks/{task['id']}", alice)[1]
    response = client.patch(
        f"/api/tasks/{task['id']}", json={"title": "x"}, headers=bob | {"If-Match": tag}
    )
    assert response.status_code == 404
    assert "task" not in response.json()  # nothing of alice's task reaches bob
    missing = client.delete("/api/tasks/999999", headers=alice | {"If-Match": "*"})
    assert missing.status_code == 404


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
@pytest.mark.parametrize("value", ["17-1", '"unclosed', '"a" "b"', 'W/"a",'])
def test_a_malformed_entity_tag_list_is_422(
    client: TestClient, alice: dict[str, str], create: Create, header: str, value: str
) -> None:
    task = create()
    method = "PATCH" if header == "If-Match" else "GET"
    response = client.request(
        method,
        f"/api/tasks/{task['id']}",
        json={"title": "x"} if method == "PATCH" else None,
        headers=alice | {header: value},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == header


def test_if_none_match_on_an_unchanged_task_is_304_without_a_body(
    client: TestClient, alice: dict[str, str], base: str
) -> None:
    url = client.post(base, json={"title": "t"}, headers=alice).headers["Location"]
    _, tag = fetch(client, url, alice)
    for header in [tag, f"W/{tag}", f'"other", {tag}', "*"]:
        response = client.get(url, headers=alice | {"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["ETag"] == tag
    client.patch(url, json={"title": "changed"}, headers=alice)
    response = client.get(url, headers=alice | {"If-None-Match": tag})
    assert response.status_code == 200
    assert response.json()["title"] == "changed"


def test_a_list_has_a_weak_etag_that_any_write_of_the_users_tasks_changes(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], base: str, create: Create
) -> None:
    task = create()
    first = client.get(base, headers=alice)
    tag = first.headers["ETag"]
    assert tag.startswith('W/"')
    unchanged = client.get(base, headers=alice | {"If-None-Match": tag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    # Another user's write leaves alice's lists as they were.
    create(headers=bob)
    assert client.get(base, headers=alice | {"If-None-Match": tag}).status_code == 304
    # Another query is another page with another tag.
    other = client.get(f"{base}?status=pending", headers=alice | {"If-None-Match": tag})
    assert other.status_code == 200

    for write in [
        lambda: client.patch(f"/api/tasks/{task['id']}", json={"title": "x"}, headers=alice),
        lambda: client.post(f"/api/tasks/{task['id']}/complete", headers=alice),
        lambda: client.delete(f"/api/tasks/{task['id']}", headers=alice),
        lambda: client.post(f"/api/tasks/{task['id']}/restore", headers=alice),
        lambda: client.post("/api/tasks", json={"title": "new"}, headers=alice),
    ]:
        assert write().status_code < 300
        response = client.get(base, headers=alice | {"If-None-Match": tag})
        assert response.status_code == 200
        assert response.headers["ETag"] != tag
        tag = response.headers["ETag"]


@pytest.mark.parametrize("writes", [0, 1, 3])
def test_two_users_with_as_many_writes_never_share_a_list_tag(
    client: TestClient, alice: dict[str, str], bob: dict[str, str], create: Create, writes: int
) -> None:
    """A frontend cache keyed by URL must not answer bob's list with alice's after a sign-in."""
    for _ in range(writes):
        create(title="same")
        create(headers=bob, title="same")
    alices = client.get("/api/tasks", headers=alice)
    bobs = client.get("/api/tasks", headers=bob)
    assert alices.headers["ETag"] != bobs.headers["ETag"]
    with_alices_tag = client.get(
        "/api/tasks", headers=bob | {"If-None-Match": alices.headers["ETag"]}
    )
    assert with_alices_tag.status_code == 200
    assert with_alices_tag.json() == bobs.json()


@pytest.mark.parametrize(
    ("method", "suffix", "body", "status"),
    [("PATCH", "", {"title": "winner"}, 200), ("DELETE", "", None, 204)],
)
def test_concurrent_writers_with_one_if_match_exactly_one_wins(
    client: TestClient,
    alice: dict[str, str],
    create: Create,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    for _ in range(3):
        task = create()
        url = f"/api/tasks/{task['id']}"
        tag = fetch(client, url, alice)[1]
        writers = 8
        start = threading.Barrier(writers)

        def write(n: int, url: str = url, tag: str = tag, start: threading.Barrier = start) -> int:
            # Each writer asks for another title: one asking for the winner's title would be
            # answered 200 with no write (already applied).
            sent = None if body is None else {"title": f"{body['title']}-{n}"}
            start.wait()
            headers = alice | {"If-Match": tag}
            return client.request(method, url + suffix, json=sent, headers=headers).status_code

        with ThreadPoolExecutor(max_workers=writers) as pool:
            statuses = sorted(pool.map(write, range(writers)))
        assert statuses.count(status) == 1, statuses
        # The losers saw the winner's version (or, for a delete, that it was gone).
        assert set(statuses) - {status} <= {412, 404}
        if method == "PATCH":
            assert set(statuses) == {200, 412}
            assert fetch(client, url, alice)[0]["title"].startswith("winner-")
