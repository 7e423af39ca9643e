"""Filters, sorting, keyset paging, X-Total-Count and Link."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

SORTS = ["created", "updated", "title", "due_date", "priority"]
NEXT_LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def next_url(response: Any) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = NEXT_LINK.match(link)
    assert match, link
    return match["url"]


def walk(client: TestClient, url: str, headers: dict[str, str]) -> tuple[list[dict], list[int]]:
    """Follow `Link: rel="next"` from the first page to the last."""
    tasks: list[dict] = []
    sizes: list[int] = []
    next_page: str | None = url
    while next_page is not None:
        response = client.get(next_page, headers=headers)
        assert response.status_code == 200, response.text
        tasks += response.json()
        sizes.append(len(response.json()))
        next_page = next_url(response)
        assert len(sizes) < 100
    return tasks, sizes


@pytest.fixture
def many(create: Callable[..., dict[str, Any]], client: TestClient, alice: dict[str, str]):
    """Tasks with deliberate ties in every sort key, so the id tie-breaker is exercised."""
    tasks = []
    for i in range(23):
        tasks.append(
            create(
                title=["apple", "Banana", "cherry", "apple"][i % 4],
                priority=["low", "medium", "high"][i % 3],
                due_date=None if i % 5 == 0 else f"2030-01-{1 + i % 4:02d}T00:00:00Z",
                completed=i % 2 == 0,
                tags=["even"] if i % 2 == 0 else ["odd", "x"],
                description="Needle in a haystack" if i % 7 == 0 else None,
            )
        )
    # Touch some so that "updated" order differs from "created" order.
    for task in tasks[::3]:
        response = client.patch(
            f"/api/tasks/{task['id']}", json={"title": task["title"]}, headers=alice
        )
        tasks[tasks.index(task)] = response.json()
    return tasks


def expected_order(tasks: list[dict], sort: str, order: str) -> list[int]:
    rank = {"low": 1, "medium": 2, "high": 3}

    def key(task: dict) -> tuple:
        value = {
            "created": task["created_at"],
            "updated": task["updated_at"],
            "title": task["title"],
            "due_date": task["due_date"] or "9999",
            "priority": rank[task["priority"]],
        }[sort]
        return (value, task["id"])

    ordered = sorted(tasks, key=key, reverse=order == "desc")
    return [task["id"] for task in ordered]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("base", ["/api/tasks", "/api/alice/tasks"])
def test_paging_returns_every_task_exactly_once_in_order(
    client: TestClient, alice: dict[str, str], many: list[dict], sort: str, order: str, base: str
) -> None:
    tasks, sizes = walk(client, f"{base}?sort={sort}&order={order}&limit=5", alice)
    assert sizes == [5, 5, 5, 5, 3]
    ids = [task["id"] for task in tasks]
    assert len(ids) == len(set(ids)) == len(many)
    if sort != "title":  # title order follows the database's collation: tested below
        assert ids == expected_order(many, sort, order)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_title_sort_ignores_case_and_pages_consistently(
    client: TestClient, alice: dict[str, str], many: list[dict], order: str
) -> None:
    all_at_once = client.get(f"/api/tasks?sort=title&order={order}&limit=500", headers=alice)
    paged, _ = walk(client, f"/api/tasks?sort=title&order={order}&limit=4", alice)
    assert [t["id"] for t in paged] == [t["id"] for t in all_at_once.json()]
    titles = [t["title"] for t in paged]
    groups = [title for i, title in enumerate(titles) if i == 0 or titles[i - 1] != title]
    expected = ["apple", "Banana", "cherry"]
    assert groups == (expected if order == "asc" else expected[::-1])


def test_priority_orders_high_over_medium_over_low(
    client: TestClient, alice: dict[str, str], many: list[dict]
) -> None:
    tasks = client.get("/api/tasks?sort=priority&limit=500", headers=alice).json()
    priorities = [t["priority"] for t in tasks]
    assert priorities == sorted(priorities, key=["high", "medium", "low"].index)


def test_undated_tasks_come_last_ascending(
    client: TestClient, alice: dict[str, str], many: list[dict]
) -> None:
    tasks = client.get("/api/tasks?sort=due_date&order=asc&limit=500", headers=alice).json()
    dated = [t["due_date"] is not None for t in tasks]
    assert dated == sorted(dated, reverse=True)
    assert dated.count(False) == 5


def test_link_keeps_the_query_and_total_counts_all_pages(
    client: TestClient, alice: dict[str, str], many: list[dict]
) -> None:
    response = client.get("/api/tasks?status=pending&sort=title&limit=4", headers=alice)
    assert response.headers["X-Total-Count"] == "11"
    url = next_url(response)
    assert url is not None
    assert url.startswith("/api/tasks?")
    query = parse_qs(urlsplit(url).query)
    assert query["status"] == ["pending"]
    assert query["sort"] == ["title"]
    assert query["limit"] == ["4"]
    second = client.get(url, headers=alice)
    assert second.headers["X-Total-Count"] == "11"
    assert all(not t["completed"] for t in second.json())


@pytest.mark.parametrize("base", ["/api/tasks", "/api/alice/tasks"])
def test_status_active_is_pending_by_another_name(
    client: TestClient, alice: dict[str, str], many: list[dict], base: str
) -> None:
    pending = {t["id"] for t in many if not t["completed"]}
    assert 0 < len(pending) < len(many)
    by_name = {}
    for status in ("pending", "active"):
        first = client.get(f"{base}?status={status}&limit=4", headers=alice)
        assert first.status_code == 200, first.text
        assert first.headers["X-Total-Count"] == str(len(pending))
        # The next page's link keeps the client's word.
        url = next_url(first)
        assert url is not None
        assert parse_qs(urlsplit(url).query)["status"] == [status]
        tasks, _ = walk(client, url, alice)
        by_name[status] = ([t["id"] for t in first.json() + tasks], first.headers["ETag"])
    assert by_name["active"] == by_name["pending"]
    assert set(by_name["active"][0]) == pending
    # The same page: either word's ETag answers 304 for the other.
    etag = by_name["pending"][1]
    again = client.get(f"{base}?status=active&limit=4", headers=alice | {"If-None-Match": etag})
    assert again.status_code == 304


def test_last_page_has_no_link(client: TestClient, alice: dict[str, str], many: list[dict]) -> None:
    response = client.get("/api/tasks?limit=23", headers=alice)
    assert len(response.json()) == 23
    assert "Link" not in response.headers


def test_default_page_is_100_newest_first(
    client: TestClient, alice: dict[str, str], many: list[dict]
) -> None:
    tasks = client.get("/api/tasks", headers=alice).json()
    assert [t["id"] for t in tasks] == expected_order(many, "created", "desc")


FILTERS = {
    "status=pending": lambda t: not t["completed"],
    "status=active": lambda t: not t["completed"],
    "status=completed": lambda t: t["completed"],
    "status=all": lambda t: True,
    "priority=high": lambda t: t["priority"] == "high",
    "tag=odd": lambda t: "odd" in t["tags"],
    "tag=od": lambda t: False,
    "q=NEEDLE": lambda t: "needle" in (t["description"] or "").lower(),
    "q=ANAN": lambda t: "anan" in t["title"].lower(),
    "due_before=2030-01-03T00:00:00Z": lambda t: (
        bool(t["due_date"]) and t["due_date"] < "2030-01-03"
    ),
    "due_after=2030-01-02T00:00:00Z": lambda t: (
        bool(t["due_date"]) and t["due_date"] > "2030-01-02T00:00:00.000000Z"
    ),
    "status=pending&priority=low&tag=x": lambda t: (
        not t["completed"] and t["priority"] == "low" and "x" in t["tags"]
    ),
}


@pytest.mark.parametrize(("query", "keep"), FILTERS.items(), ids=FILTERS)
def test_filters(
    client: TestClient, alice: dict[str, str], many: list[dict], query: str, keep: Callable
) -> None:
    response = client.get(f"/api/tasks?{query}&limit=500", headers=alice)
    assert response.status_code == 200, response.text
    expected = {t["id"] for t in many if keep(t)}
    assert {t["id"] for t in response.json()} == expected
    assert response.headers["X-Total-Count"] == str(len(expected))


def test_search_and_title_sort_fold_case_beyond_ascii(
    client: TestClient, alice: dict[str, str], create: Callable
) -> None:
    upper, lower = create(title="ÄPFEL kaufen"), create(title="äpfel schälen")
    create(title="Ärger")
    create(title="Birnen")
    found = client.get("/api/tasks", params={"q": "äPfEl"}, headers=alice).json()
    assert {t["id"] for t in found} == {upper["id"], lower["id"]}
    # Folded, both apple tasks sort together whatever the collation; unfolded, "Ärger"
    # (capital Ä) would fall between them.
    titles = [t["title"] for t in client.get("/api/tasks?sort=title", headers=alice).json()]
    assert abs(titles.index("ÄPFEL kaufen") - titles.index("äpfel schälen")) == 1


@pytest.mark.parametrize("q", ["%", "_", "a%", "\\", "/", "a/_"])
def test_q_matches_wildcards_literally(
    client: TestClient, alice: dict[str, str], create: Callable, q: str
) -> None:
    literal = create(title=f"has {q} inside")
    create(title="plain words")
    response = client.get("/api/tasks", params={"q": q}, headers=alice)
    assert [t["id"] for t in response.json()] == [literal["id"]]


def test_cursor_from_another_sort_is_rejected(
    client: TestClient, alice: dict[str, str], many: list[dict]
) -> None:
    url = next_url(client.get("/api/tasks?sort=title&limit=5", headers=alice))
    assert url is not None
    cursor = parse_qs(urlsplit(url).query)["cursor"][0]
    for query in (f"sort=priority&cursor={cursor}", f"sort=title&order=asc&cursor={cursor}"):
        response = client.get(f"/api/tasks?{query}", headers=alice)
        assert response.status_code == 422
        assert response.json()["errors"][0]["parameter"] == "cursor"


def _cursor(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _position(sort: str, keys: list, task_id: object = 1) -> str:
    return _cursor({"s": sort, "o": "desc", "k": keys, "i": task_id})


BAD_CURSORS = {
    "garbage": ("created", "garbage"),
    "empty object": ("created", _cursor({})),
    "not an object": ("created", _cursor([1, 2])),
    "deeply nested": ("created", _cursor({"s": [[[[[[]]]]]]})),
    "not a date": ("created", _position("created", ["not a date"])),
    "date without offset": ("created", _position("created", ["2030-01-01T00:00:00"])),
    "date past 9999 in UTC": ("created", _position("created", ["9999-12-31T23:00:00-05:00"])),
    "date before year 1 in UTC": ("created", _position("created", ["0001-01-01T00:00:00+05:00"])),
    "key missing": ("created", _position("created", [])),
    "key not a list": ("created", _position("created", "2030-01-01T00:00:00+00:00")),
    "id zero": ("created", _position("created", ["2030-01-01T00:00:00+00:00"], 0)),
    "id a boolean": ("created", _position("created", ["2030-01-01T00:00:00+00:00"], True)),
    "id too large": ("created", _position("created", ["2030-01-01T00:00:00+00:00"], 2**63)),
    "priority a name": ("priority", _position("priority", ["high"])),
    "priority out of range": ("priority", _position("priority", [2**70])),
    "title a number": ("title", _position("title", [5])),
    "title with NUL": ("title", _position("title", ["a\u0000"])),
    "title with lone surrogate": ("title", _position("title", ["\ud800"])),
    "due date without flag": ("due_date", _position("due_date", ["2030-01-01T00:00:00+00:00"])),
    "due date flag 2": ("due_date", _position("due_date", [2, "2030-01-01T00:00:00+00:00"])),
}


@pytest.mark.parametrize(("sort", "cursor"), BAD_CURSORS.values(), ids=BAD_CURSORS)
def test_cursor_that_does_not_decode_is_422(
    client: TestClient, alice: dict[str, str], create: Callable, sort: str, cursor: str
) -> None:
    create()
    response = client.get(f"/api/tasks?sort={sort}&cursor={cursor}", headers=alice)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["parameter"] == "cursor"


def test_undated_tasks_sort_after_tasks_due_at_the_end_of_time(
    client: TestClient, alice: dict[str, str], create: Callable
) -> None:
    undated = create(title="undated")
    latest = create(title="latest", due_date="9999-12-31T23:59:59.999999Z")
    earliest = create(title="earliest", due_date="0001-01-01T00:00:00Z")
    tasks, _ = walk(client, "/api/tasks?sort=due_date&order=asc&limit=1", alice)
    assert [t["id"] for t in tasks] == [earliest["id"], latest["id"], undated["id"]]
    tasks, _ = walk(client, "/api/tasks?sort=due_date&order=desc&limit=1", alice)
    assert [t["id"] for t in tasks] == [undated["id"], latest["id"], earliest["id"]]


def test_paging_is_stable_while_tasks_are_added(
    client: TestClient, alice: dict[str, str], many: list[dict], create: Callable
) -> None:
    first = client.get("/api/tasks?sort=created&order=asc&limit=10", headers=alice)
    create(title="added after the first page")
    rest, _ = walk(client, next_url(first) or "", alice)
    ids = [t["id"] for t in first.json()] + [t["id"] for t in rest]
    assert len(ids) == len(set(ids)) == len(many) + 1
