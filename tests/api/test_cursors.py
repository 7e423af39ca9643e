"""Paging cursors fit the spec's bound for every value a task can hold, and every `Link` leads
to the end of the list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from storage.cursors import Position
from tests.api.test_listing import next_url
from todo_api.contract import spec

PARAMETERS = spec()["components"]["parameters"]
CURSOR_BOUND = PARAMETERS["Cursor"]["schema"]["maxLength"]
TITLE_BOUND = spec()["components"]["schemas"]["TaskInput"]["properties"]["title"]["maxLength"]
SORTS = PARAMETERS["Sort"]["schema"]["enum"]
ORDERS = PARAMETERS["Order"]["schema"]["enum"]

# Titles of the most bytes a cursor can carry: four-byte emoji; letters whose lower case takes
# more bytes than they do (U+023A is 2 bytes, its lower case U+2C65 is 3); characters JSON
# escapes; and letters of another script.
LONGEST_TITLES = [
    "\U0001f600" * TITLE_BOUND,
    "\u023a" * TITLE_BOUND,
    '"\\' * (TITLE_BOUND // 2),
    "Задача " + "щ" * (TITLE_BOUND - 8) + "x",
    "\U0001f9d1\u200d\U0001f4bb" * (TITLE_BOUND // 3),
]


def follow(client: TestClient, headers: dict[str, str], url: str) -> tuple[list[int], list[str]]:
    """Every task a list yields page by page, and every cursor on the way."""
    ids: list[int] = []
    cursors: list[str] = []
    next_page: str | None = url
    while next_page is not None:
        response = client.get(next_page, headers=headers)
        assert response.status_code == 200, response.text
        ids += [task["id"] for task in response.json()]
        next_page = next_url(response)
        if next_page is not None:
            cursors += parse_qs(urlsplit(next_page).query)["cursor"]
    return ids, cursors


def test_the_reported_titles_page_to_the_end(
    client: TestClient, alice: dict[str, str], create: Callable[..., dict[str, Any]]
) -> None:
    made = [create(title="Задача " + "щ" * 150 + str(i))["id"] for i in range(3)]
    ids, cursors = follow(client, alice, "/api/tasks?sort=title&limit=1")
    assert sorted(ids) == sorted(made)
    assert len(cursors) == 2
    assert all(len(cursor) <= CURSOR_BOUND for cursor in cursors)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("sort", SORTS)
def test_every_link_leads_to_the_end_with_cursors_within_the_bound(
    client: TestClient,
    alice: dict[str, str],
    create: Callable[..., dict[str, Any]],
    sort: str,
    order: str,
) -> None:
    due_dates = [None, "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", None, None]
    priorities = ["low", "high", "medium", "high", "low"]
    for title, due_date, priority in zip(LONGEST_TITLES, due_dates, priorities, strict=True):
        for _ in range(2):  # equal sort keys: the id breaks the tie
            create(title=title, due_date=due_date, priority=priority, tags=["\U0001f600" * 30])
    everything = client.get(f"/api/tasks?sort={sort}&order={order}&limit=500", headers=alice)
    ids, cursors = follow(client, alice, f"/api/tasks?sort={sort}&order={order}&limit=1")
    assert ids == [task["id"] for task in everything.json()]
    assert len(cursors) == len(ids) - 1
    assert max(len(cursor) for cursor in cursors) <= CURSOR_BOUND


def test_the_longest_cursor_the_server_can_issue_fits_the_bound() -> None:
    """Sort keys as the database hands them back: lower(title) keeps the character count, and
    no character takes more than four bytes in UTF-8."""
    widest = "\U0010ffff" * TITLE_BOUND
    latest = dt.datetime.max.replace(tzinfo=dt.UTC)
    largest_id = 2**63 - 1
    keys = {
        "title": (widest,),
        "created": (latest,),
        "updated": (latest,),
        "due_date": (1, latest),
        "priority": (3,),
    }
    assert set(keys) == set(SORTS)
    for sort, sort_keys in keys.items():
        for order in ORDERS:
            cursor = Position(sort, order, sort_keys, largest_id).encode()
            assert len(cursor) <= CURSOR_BOUND, (sort, len(cursor))
            assert Position.decode(cursor, sort, order).keys == sort_keys
