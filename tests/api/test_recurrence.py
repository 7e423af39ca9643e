"""Recurring tasks: the rule's subset and normal form, occurrences in the task's time zone,
the next occurrence made by completing one (once), undo, and isolation."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from storage import TaskStore
from storage.models import TaskOwnerRow, TaskRow
from tests.conftest import SECRET, Client, bearer, make_token
from todo_api.contract import task_defaults

Create = Callable[..., dict[str, Any]]


def complete(client: TestClient, headers: dict[str, str], task: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"/api/tasks/{task['id']}/complete", json={"completed": True}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def get(client: TestClient, headers: dict[str, str], task_id: int) -> dict[str, Any]:
    response = client.get(f"/api/tasks/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def series_dues(
    client: TestClient, headers: dict[str, str], first: dict[str, Any], how_many: int
) -> list[str]:
    """Complete each occurrence in turn; the due dates of the `how_many` made after it."""
    dues, task = [], first
    for _ in range(how_many):
        done = complete(client, headers, task)
        if done["next_task_id"] is None:
            break
        task = get(client, headers, done["next_task_id"])
        dues.append(task["due_date"])
    return dues


def test_a_new_task_has_no_recurrence_and_utc(create: Create) -> None:
    task = create()
    assert (task["recurrence"], task["timezone"], task["series_id"]) == (None, "UTC", None)
    assert (task["next_task_id"], task["remind_before"], task["remind_at"]) == (None, None, None)


def test_a_rule_is_answered_normalised_and_starts_a_series(create: Create) -> None:
    task = create(
        recurrence="rrule:byday=mo,we;interval=1;freq=weekly",
        due_date="2026-12-07T09:00:00Z",
    )
    assert task["recurrence"] == "FREQ=WEEKLY;BYDAY=MO,WE"
    assert task["series_id"] == task["id"]


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ("FREQ=HOURLY", "FREQ"),
        ("FREQ=DAILY;BYHOUR=9", "BYHOUR"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20270101", "UNTIL"),
        ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY"),
        ("FREQ=WEEKLY;BYMONTHDAY=3", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYDAY=5MO;BYMONTHDAY=1", "BYMONTHDAY"),
        ("FREQ=DAILY;UNTIL=20261341", "UNTIL"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ"),
        ("INTERVAL=2", "FREQ"),
        ("FREQ=DAILY;;", "''"),
    ],
)
def test_a_rule_outside_the_subset_is_refused_naming_the_part(
    client: TestClient, alice: dict[str, str], rule: str, named: str
) -> None:
    body = {"title": "t", "recurrence": rule, "due_date": "2026-12-07T09:00:00Z"}
    response = client.post("/api/tasks", json=body, headers=alice)
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["pointer"] == "#/recurrence"
    assert named in error["detail"]


def test_an_unknown_time_zone_is_refused(client: TestClient, alice: dict[str, str]) -> None:
    for zone in ("Mars/Olympus", "../../etc/passwd", "localtime"):
        response = client.post("/api/tasks", json={"title": "t", "timezone": zone}, headers=alice)
        assert response.status_code == 422, zone
        assert response.json()["errors"][0]["pointer"] == "#/timezone"


def test_a_recurrence_needs_a_due_date_on_create_and_on_update(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    response = client.post(
        "/api/tasks", json={"title": "t", "recurrence": "FREQ=DAILY"}, headers=alice
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"pointer": "#/due_date", "detail": "a task with a recurrence needs a due_date"}
    ]
    task = create(recurrence="FREQ=DAILY", due_date="2026-12-07T09:00:00Z")
    cleared = client.patch(f"/api/tasks/{task['id']}", json={"due_date": None}, headers=alice)
    assert cleared.status_code == 422
    assert get(client, alice, task["id"]) == task  # nothing was written
    undated = create()
    response = client.patch(
        f"/api/tasks/{undated['id']}", json={"recurrence": "FREQ=DAILY"}, headers=alice
    )
    assert response.status_code == 422


def test_completing_makes_the_next_occurrence_in_the_same_write(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(
        title="water plants",
        description="the big ones",
        priority="high",
        tags=["home"],
        recurrence="FREQ=DAILY;INTERVAL=2",
        due_date="2026-12-07T09:00:00Z",
        remind_before="PT15M",
    )
    done = complete(client, alice, task)
    assert done["completed"] is True
    assert done["series_id"] == task["id"]
    following = get(client, alice, done["next_task_id"])
    assert following["due_date"] == "2026-12-09T09:00:00.000000Z"
    assert following["remind_at"] == "2026-12-09T08:45:00.000000Z"
    assert following["completed"] is False
    assert following["series_id"] == task["id"]
    same = ("title", "description", "priority", "tags", "recurrence", "timezone", "remind_before")
    assert {k: following[k] for k in same} == {k: task[k] for k in same}
    listed = client.get("/api/tasks?status=pending", headers=alice).json()
    assert [t["id"] for t in listed] == [following["id"]]


@pytest.mark.parametrize(
    ("zone", "first", "expected"),
    [
        # Europe/Berlin leaves summer time on 2026-10-25: 09:00 local is 07:00Z, then 08:00Z.
        (
            "Europe/Berlin",
            "2026-10-24T07:00:00Z",
            ["2026-10-25T08:00:00.000000Z", "2026-10-26T08:00:00.000000Z"],
        ),
        # America/New_York starts summer time on 2027-03-14: 09:00 local is 14:00Z, then 13:00Z.
        (
            "America/New_York",
            "2027-03-13T14:00:00Z",
            ["2027-03-14T13:00:00.000000Z", "2027-03-15T13:00:00.000000Z"],
        ),
    ],
)
def test_occurrences_keep_their_local_time_across_a_daylight_saving_change(
    client: TestClient,
    alice: dict[str, str],
    create: Create,
    zone: str,
    first: str,
    expected: list[str],
) -> None:
    task = create(recurrence="FREQ=DAILY", timezone=zone, due_date=first)
    assert series_dues(client, alice, task, 2) == expected


def test_a_monthly_rule_on_the_31st_skips_the_shorter_months(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(recurrence="FREQ=MONTHLY;BYMONTHDAY=31", due_date="2027-01-31T12:00:00Z")
    assert [due[:10] for due in series_dues(client, alice, task, 3)] == [
        "2027-03-31",
        "2027-05-31",
        "2027-07-31",
    ]


def test_the_last_day_of_each_month_with_a_negative_monthday(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(recurrence="FREQ=MONTHLY;BYMONTHDAY=-1", due_date="2027-01-31T12:00:00Z")
    assert [due[:10] for due in series_dues(client, alice, task, 3)] == [
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
    ]


def test_count_ends_the_series(client: TestClient, alice: dict[str, str], create: Create) -> None:
    task = create(recurrence="FREQ=WEEKLY;COUNT=3", due_date="2027-01-04T09:00:00Z")
    dues = series_dues(client, alice, task, 5)
    assert dues == ["2027-01-11T09:00:00.000000Z", "2027-01-18T09:00:00.000000Z"]
    last = client.get("/api/tasks?status=completed&sort=due_date&order=desc", headers=alice)
    assert last.json()[0]["recurrence"] == "FREQ=WEEKLY;COUNT=1"
    assert last.json()[0]["next_task_id"] is None


def test_until_ends_the_series_and_includes_its_own_day(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(
        recurrence="FREQ=DAILY;UNTIL=20270103",
        timezone="Asia/Tokyo",
        due_date="2027-01-01T00:00:00Z",  # 09:00 in Tokyo
    )
    dues = series_dues(client, alice, task, 5)
    assert dues == ["2027-01-02T00:00:00.000000Z", "2027-01-03T00:00:00.000000Z"]


def test_completing_twice_or_concurrently_makes_one_next_occurrence(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(recurrence="FREQ=DAILY", due_date="2027-01-01T09:00:00Z")
    answers: list[dict[str, Any]] = []

    def finish() -> None:
        answers.append(complete(client, alice, task))

    threads = [threading.Thread(target=finish) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6  # an assertion failing in a thread would not fail the test
    assert len({answer["next_task_id"] for answer in answers}) == 1
    again = complete(client, alice, task)  # a retry
    assert again["next_task_id"] == answers[0]["next_task_id"]
    listed = client.get("/api/tasks", headers=alice)
    assert listed.headers["X-Total-Count"] == "2"


def test_undo_removes_an_untouched_next_occurrence(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(recurrence="FREQ=DAILY", due_date="2027-01-01T09:00:00Z")
    done = complete(client, alice, task)
    undone = client.post(
        f"/api/tasks/{task['id']}/complete", json={"completed": False}, headers=alice
    ).json()
    assert undone["completed"] is False
    assert undone["next_task_id"] is None
    assert client.get(f"/api/tasks/{done['next_task_id']}", headers=alice).status_code == 404
    feed = client.get("/api/tasks/changes", headers=alice).json()["changes"]
    assert {"op": "delete", "id": done["next_task_id"]}.items() <= feed[-1].items()
    # Completing again makes a new next occurrence.
    redone = complete(client, alice, task)
    assert redone["next_task_id"] not in (None, done["next_task_id"])
    assert client.get("/api/tasks", headers=alice).headers["X-Total-Count"] == "2"


def test_undo_keeps_a_next_occurrence_that_was_changed(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(recurrence="FREQ=DAILY", due_date="2027-01-01T09:00:00Z")
    done = complete(client, alice, task)
    following = f"/api/tasks/{done['next_task_id']}"
    assert client.patch(following, json={"title": "moved"}, headers=alice).status_code == 200
    undone = client.patch(
        f"/api/tasks/{task['id']}/complete", json={"completed": False}, headers=alice
    ).json()
    assert undone["next_task_id"] == done["next_task_id"]
    assert client.get(following, headers=alice).json()["title"] == "moved"
    # Completed again: the kept occurrence is still the next one; no second one is made.
    assert complete(client, alice, task)["next_task_id"] == done["next_task_id"]
    assert client.get("/api/tasks", headers=alice).headers["X-Total-Count"] == "2"


def test_a_toggle_completes_and_undoes_too(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(recurrence="FREQ=DAILY", due_date="2027-01-01T09:00:00Z")
    url = f"/api/tasks/{task['id']}/complete"
    done = client.post(url, headers=alice).json()
    assert done["next_task_id"] is not None
    assert client.post(url, headers=alice).json()["next_task_id"] is None
    assert client.get("/api/tasks", headers=alice).headers["X-Total-Count"] == "1"


def test_completing_with_an_update_makes_the_next_occurrence(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(recurrence="FREQ=YEARLY", due_date="2027-02-28T09:00:00Z")
    done = client.patch(f"/api/tasks/{task['id']}", json={"completed": True}, headers=alice)
    assert get(client, alice, done.json()["next_task_id"])["due_date"].startswith("2028-02-28")


def test_the_feed_carries_both_writes_of_a_completion(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(recurrence="FREQ=DAILY", due_date="2027-01-01T09:00:00Z")
    cursor = client.get("/api/tasks/changes", headers=alice).json()["cursor"]
    done = complete(client, alice, task)
    changes = client.get(f"/api/tasks/changes?cursor={cursor}", headers=alice).json()["changes"]
    assert [change["task"]["id"] for change in changes] == [task["id"], done["next_task_id"]]
    assert changes[0]["task"]["next_task_id"] == done["next_task_id"]


def test_another_users_series_is_invisible(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    mallory = bearer(make_token("mallory-recurrence"))
    task = create(recurrence="FREQ=DAILY", due_date="2027-01-01T09:00:00Z")
    done = complete(client, alice, task)
    for task_id in (task["id"], done["next_task_id"]):
        assert client.get(f"/api/tasks/{task_id}", headers=mallory).status_code == 404
        response = client.post(f"/api/tasks/{task_id}/complete", headers=mallory)
        assert response.status_code == 404
    assert client.get("/api/tasks", headers=mallory).json() == []
    # A series id names nothing that another user could write to.
    body = {"title": "x", "series_id": task["id"], "next_task_id": task["id"]}
    made = client.post("/api/tasks", json=body, headers=mallory).json()
    assert (made["series_id"], made["next_task_id"]) == (None, None)


def test_no_next_date_within_the_horizon_or_the_calendar_ends_the_series(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    rules = [
        # Every seventh day from a Monday is a Monday: never a Tuesday again.
        ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "2027-01-04T09:00:00Z", "UTC"),
        # No month has a sixth Monday.
        ("FREQ=MONTHLY;BYDAY=6MO", "2027-01-04T09:00:00Z", "UTC"),
        # More than 100 years ahead.
        ("FREQ=YEARLY;INTERVAL=101", "2027-01-04T09:00:00Z", "UTC"),
        # The next day is past year 9999, in UTC and in the task's zone.
        ("FREQ=DAILY", "9999-12-31T05:00:00Z", "America/Los_Angeles"),
    ]
    for rule, due, zone in rules:
        task = create(recurrence=rule, due_date=due, timezone=zone)
        done = complete(client, alice, task)
        assert done["completed"] is True, rule
        assert done["next_task_id"] is None, rule


def test_a_completion_past_the_quota_is_409_and_writes_nothing(serve: Client) -> None:
    api = serve(auth_secret=SECRET, task_quota=1)
    headers = bearer(make_token("alice", iss=None, aud=None))
    body = {"title": "t", "recurrence": "FREQ=DAILY", "due_date": "2027-01-01T09:00:00Z"}
    task = api.post("/api/tasks", json=body, headers=headers).json()
    response = api.post(f"/api/tasks/{task['id']}/complete", headers=headers)
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert api.get(f"/api/tasks/{task['id']}", headers=headers).json() == task


def test_undoing_over_and_over_keeps_deleted_tasks_within_the_quota(
    client: TestClient, alice: dict[str, str], engine: Any
) -> None:
    """Each undo leaves the withdrawn occurrence deleted (restorable): like any delete, it is
    held to the quota's number of deleted tasks."""
    store_quota = 3
    store = TaskStore(engine, quota=store_quota)
    user = "undo-bound"
    fields = task_defaults() | {
        "title": "t",
        "recurrence": "FREQ=DAILY",
        "due_date": dt.datetime(2027, 1, 1, 9, tzinfo=dt.UTC),
    }
    task = store.create(user, fields).task
    for _ in range(6):
        assert store.set_completed(user, task.id, True).next_task_id is not None
        assert store.set_completed(user, task.id, False).next_task_id is None
    with engine.begin() as connection:
        deleted = connection.scalar(
            select(func.count())
            .select_from(TaskRow)
            .where(TaskRow.user_id == user, TaskRow.deleted_at.is_not(None))
        )
        counted = connection.scalar(
            select(TaskOwnerRow.tombstone_count).where(TaskOwnerRow.user_id == user)
        )
    assert deleted == counted == store_quota
