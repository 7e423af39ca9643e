"""Reminders: `remind_before` and the `remind_at` it gives, the list of reminders due, and
delivery on event streams, once per occurrence, across server processes and restarts."""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from storage import TaskStore
from storage.models import TaskRow
from tests.api.test_live_updates import WAKEUPS, Server, server_env, started, two_servers
from tests.conftest import bearer, make_token

Create = Callable[..., dict[str, Any]]


def rfc3339(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def soon(seconds: float) -> str:
    return rfc3339(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("given", "answered"),
    [("PT15M", "PT15M"), ("P1W", "P7D"), ("PT90M", "PT1H30M"), ("P1DT12H", "P1DT12H")],
)
def test_remind_before_is_answered_normalised_with_remind_at(
    create: Create, given: str, answered: str
) -> None:
    task = create(due_date="2027-01-10T12:00:00Z", remind_before=given)
    assert task["remind_before"] == answered
    due = dt.datetime(2027, 1, 10, 12, tzinfo=dt.UTC)
    expected = due - dt.timedelta(days=7 if given == "P1W" else 0)
    if given != "P1W":
        hours = {"PT15M": 0.25, "PT90M": 1.5, "P1DT12H": 36}[given]
        expected = due - dt.timedelta(hours=hours)
    assert task["remind_at"] == rfc3339(expected).replace("Z", ".000000Z")


@pytest.mark.parametrize(
    "duration", ["P", "PT", "P1DT", "15M", "P1M", "P1Y", "PT-5M", "P1W2D", "P9999DT24H", "P10000D"]
)
def test_a_duration_outside_the_grammar_is_refused(
    client: TestClient, alice: dict[str, str], duration: str
) -> None:
    response = client.post(
        "/api/tasks", json={"title": "t", "remind_before": duration}, headers=alice
    )
    assert response.status_code == 422, duration
    assert response.json()["errors"][0]["pointer"] == "#/remind_before"


def test_the_longest_durations_are_answered_in_a_form_the_contract_accepts(
    create: Create,
) -> None:
    """The normal form rolls hours into days: it must still fit the spec's pattern (the
    response is validated against it in this suite)."""
    assert create(remind_before="P999W")["remind_before"] == "P6993D"
    assert create(remind_before="P9997DT47H59M59S")["remind_before"] == "P9998DT23H59M59S"
    assert create(remind_before="P9999D")["remind_before"] == "P9999D"


def test_remind_at_follows_the_due_date_and_remind_before(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(remind_before="PT10M")
    assert task["remind_at"] is None  # no due date: nothing to remind of
    url = f"/api/tasks/{task['id']}"
    moved = client.patch(url, json={"due_date": "2027-01-10T12:00:00Z"}, headers=alice).json()
    assert moved["remind_at"] == "2027-01-10T11:50:00.000000Z"
    changed = client.patch(url, json={"remind_before": "PT1H"}, headers=alice).json()
    assert changed["remind_at"] == "2027-01-10T11:00:00.000000Z"
    cleared = client.patch(url, json={"remind_before": None}, headers=alice).json()
    assert (cleared["remind_before"], cleared["remind_at"]) == (None, None)


def due_ids(client: TestClient, headers: dict[str, str]) -> list[int]:
    response = client.get("/api/tasks?reminder=due&sort=created&order=asc", headers=headers)
    assert response.status_code == 200
    assert "ETag" not in response.headers  # it changes with the clock, not with writes
    assert response.headers["X-Total-Count"] == str(len(response.json()))
    return [task["id"] for task in response.json()]


def test_the_reminders_due_are_listed_until_delivered_and_moving_rearms(
    client: TestClient, alice: dict[str, str], create: Create, engine: Engine
) -> None:
    past = create(due_date=soon(-60), remind_before="PT1M")
    create(due_date=soon(3600), remind_before="PT1M")  # not yet
    create(due_date=soon(-60))  # no reminder
    done = create(due_date=soon(-60), remind_before="PT1M", completed=True)
    gone = create(due_date=soon(-60), remind_before="PT1M")
    assert client.delete(f"/api/tasks/{gone['id']}", headers=alice).status_code == 204
    assert due_ids(client, alice) == [past["id"]]
    assert done["remind_at"] is not None

    reminders = TaskStore(engine, quota=100).reminders()
    claimed = reminders.claim(["alice"])
    assert [task.id for task in claimed] == [past["id"]]
    # Claimed is not delivered: listed until a stream has written it.
    assert due_ids(client, alice) == [past["id"]]
    assert reminders.claim(["alice"]) == []  # held by the claim's lease
    reminders.deliver(claimed)
    assert due_ids(client, alice) == []
    # Moving the due date arms the reminder again (a new time to be reminded at), and a
    # late confirmation of the old one does not count for it.
    url = f"/api/tasks/{past['id']}"
    assert client.patch(url, json={"due_date": soon(-30)}, headers=alice).status_code == 200
    assert due_ids(client, alice) == [past["id"]]
    reminders.deliver(claimed)
    assert due_ids(client, alice) == [past["id"]]
    # Another change leaves a delivered reminder delivered.
    reminders.deliver(reminders.claim(["alice"]))
    assert client.patch(url, json={"title": "renamed"}, headers=alice).status_code == 200
    assert due_ids(client, alice) == []
    # Moving remind_before arms it again too.
    assert client.patch(url, json={"remind_before": "PT2M"}, headers=alice).status_code == 200
    assert due_ids(client, alice) == [past["id"]]


def test_a_claim_heard_by_another_process_is_read_only_while_the_claim_stands(
    client: TestClient, alice: dict[str, str], create: Create, engine: Engine
) -> None:
    moved = create(due_date=soon(-60), remind_before="PT1M")
    delivered = create(due_date=soon(-60), remind_before="PT1M")
    kept = create(due_date=soon(-60), remind_before="PT1M")
    reminders = TaskStore(engine, quota=100).reminders()
    now = dt.datetime.now(dt.UTC)
    claimed = reminders.claim(["alice"], now)
    until = now + reminders.lease
    assert sorted(task.id for task in claimed) == sorted(t["id"] for t in (moved, delivered, kept))
    # Before another process reads the claims it heard of, one reminder moves to tomorrow (a
    # reminder of its own, not this claim's) and another is written by the claimer's stream
    # (the other process's streams get it too).
    url = f"/api/tasks/{moved['id']}"
    assert client.patch(url, json={"due_date": soon(86_400)}, headers=alice).status_code == 200
    reminders.deliver([task for task in claimed if task.id == delivered["id"]])
    ids = [task.id for task in claimed]
    assert [task.id for task in reminders.read("alice", ids, until)] == sorted(
        [delivered["id"], kept["id"]]
    )
    # A claim heard late, after its lease ran out and the reminder was claimed anew, is not
    # the claim that holds it now.
    later = now + reminders.lease + dt.timedelta(seconds=1)
    assert [task.id for task in reminders.claim(["alice"], later)] == [kept["id"]]
    assert [task.id for task in reminders.read("alice", ids, until)] == [delivered["id"]]


def test_each_reminder_is_claimed_once_by_concurrent_claimers(
    client: TestClient, create: Create, engine: Engine
) -> None:
    made = {create(due_date=soon(-5), remind_before="PT1S")["id"] for _ in range(40)}
    reminders = TaskStore(engine, quota=100).reminders()
    claimed: list[int] = []
    lock = threading.Lock()

    def claim() -> None:
        for _ in range(10):
            tasks = reminders.claim(["alice"], limit=3)
            with lock:
                claimed.extend(task.id for task in tasks)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(made)


def test_a_next_occurrence_carries_the_reminder(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(recurrence="FREQ=DAILY", due_date="2027-01-10T12:00:00Z", remind_before="P1D")
    done = client.post(f"/api/tasks/{task['id']}/complete", headers=alice).json()
    following = client.get(f"/api/tasks/{done['next_task_id']}", headers=alice).json()
    assert following["remind_before"] == "P1D"
    assert following["remind_at"] == "2027-01-10T12:00:00.000000Z"


# Two server processes on the suite's database: on PostgreSQL both listen (every process's
# streams hear every claim) or both poll; on SQLite they poll.
@pytest.fixture(scope="module", params=WAKEUPS)
def pair(
    request: pytest.FixtureRequest,
    database_url: str,
    app_client: TestClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, Server, str]]:
    directory = tmp_path_factory.mktemp("reminders")
    with two_servers(database_url, directory, request.param) as (a, b):
        yield a, b, request.param


def reminders(stream: Any, count: int) -> list[int]:
    """The ids of the next `count` reminder events (change events in between are skipped)."""
    ids: list[int] = []
    while len(ids) < count:
        event = stream.next(timeout=8)
        if event.event == "reminder":
            assert event.id is None
            ids.append(event.json()["id"])
    return ids


def reminders_within(stream: Any, seconds: float) -> list[int]:
    """The ids of the reminder events that come within `seconds`."""
    ids: list[int] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            event = stream.next(timeout=left)
        except (queue.Empty, EOFError):
            break
        if event.event == "reminder":
            ids.append(event.json()["id"])
    return ids


def test_every_reminder_reaches_the_users_streams_once_across_two_processes(
    pair: tuple[Server, Server, str], client: TestClient, engine: Engine
) -> None:
    a, b, mode = pair
    carol = bearer(make_token("carol-reminders"))
    with a.stream(carol) as on_a, b.stream(carol) as on_b:
        made = [
            b.post(
                "/tasks",
                json={"title": f"r{i}", "due_date": soon(2 + i * 0.2), "remind_before": "PT1S"},
                headers=carol,
            ).json()["id"]
            for i in range(5)
        ]
        with ThreadPoolExecutor(2) as pool:
            got_a, got_b = pool.map(lambda stream: reminders_within(stream, 6.0), (on_a, on_b))
    if mode == "listen":
        # Every process hears every claim: each stream gets each reminder, once.
        assert sorted(got_a) == sorted(got_b) == sorted(made)
    else:
        # Without LISTEN a claim reaches the claiming process's streams only: between the
        # two, each reminder exactly once.
        assert sorted(got_a + got_b) == sorted(made)
    with engine.begin() as connection:
        rows = connection.execute(
            select(TaskRow.reminded_at).where(TaskRow.user_id == "carol-reminders")
        ).all()
    assert len(rows) == 5
    assert all(row.reminded_at is not None for row in rows)


def test_a_reminder_due_while_no_server_ran_is_delivered_on_the_next_start(
    database_url: str, app_client: TestClient, client: TestClient, tmp_path: Path
) -> None:
    dave = bearer(make_token("dave-reminders"))
    env = server_env(database_url)
    with started(env, tmp_path, "before") as before:
        task = before.post(
            "/tasks",
            json={"title": "t", "due_date": soon(1), "remind_before": "PT0S"},
            headers=dave,
        ).json()
    # No process runs now; the reminder comes due meanwhile.
    time.sleep(1.5)
    listed = client.get("/api/tasks?reminder=due", headers=dave).json()
    assert [t["id"] for t in listed] == [task["id"]]
    with started(env, tmp_path, "after") as after, after.stream(dave) as stream:
        assert reminders(stream, 1) == [task["id"]]
        assert reminders_within(stream, 2.0) == []
    assert client.get("/api/tasks?reminder=due", headers=dave).json() == []


def test_another_users_stream_gets_no_reminder(
    pair: tuple[Server, Server, str], client: TestClient
) -> None:
    a, _b, _mode = pair
    erin, frank = bearer(make_token("erin-reminders")), bearer(make_token("frank-reminders"))
    with a.stream(frank) as franks, a.stream(erin) as erins:
        body = {"title": "t", "due_date": soon(1), "remind_before": "PT0S"}
        made = a.post("/tasks", json=body, headers=erin).json()
        assert reminders(erins, 1) == [made["id"]]
        assert reminders_within(franks, 1.0) == []


def test_a_completed_occurrence_and_the_next_one_both_reach_the_stream(
    pair: tuple[Server, Server, str], client: TestClient
) -> None:
    a, b, _mode = pair
    gina = bearer(make_token("gina-recurrence"))
    body = {"title": "t", "recurrence": "FREQ=DAILY", "due_date": "2027-01-01T09:00:00Z"}
    task = a.post("/tasks", json=body, headers=gina).json()
    with b.stream(gina) as stream:
        assert stream.next().json()["task"]["id"] == task["id"]  # the create, from the feed
        done = a.post(f"/tasks/{task['id']}/complete", headers=gina).json()
        first, second = stream.take(2)
    assert first.json()["task"] == done
    assert second.json()["task"]["id"] == done["next_task_id"]
    assert second.json()["task"]["series_id"] == task["id"]
