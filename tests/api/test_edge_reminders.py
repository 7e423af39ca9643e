"""Reminders under attack, replayed against `todo-api serve`: streams that open and close while
a backlog is due must lose none (a reminder counts as delivered only once a stream wrote it),
and one user's backlog must not hold back another user's reminder."""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import socket
import threading
import time
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from storage import TaskStore
from tests.api.test_live_updates import WAKEUPS, Server, server_env, started
from tests.conftest import bearer, make_token
from tests.sse import Event, EventReader
from todo_api.contract import task_defaults

# Seconds a claim no stream confirmed stays claimed: short, so that the test sees it expire.
LEASE = 3


@pytest.fixture(scope="module", params=WAKEUPS)
def server(
    request: pytest.FixtureRequest,
    database_url: str,
    app_client: TestClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    env = server_env(database_url, STREAM_WAKEUPS=request.param, REMINDER_LEASE_SECONDS=str(LEASE))
    with started(env, tmp_path_factory.mktemp("edge-reminders"), request.param) as served:
        yield served


class LeavingReader(EventReader):
    """A stream whose client leaves as a tab does, but still reads every byte the server wrote
    before it saw the client go: what was written is what was received."""

    def leave(self) -> list[Event]:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
        assert self.ended.wait(10), "the server did not end the stream"
        events = []
        while True:
            try:
                events.append(self.next(timeout=0))
            except (queue.Empty, EOFError):
                return events


def reminder_ids(events: list[Event]) -> list[int]:
    return [event.json()["id"] for event in events if event.event == "reminder"]


def due_now(server: Server, headers: dict[str, str]) -> list[int]:
    answer = httpx.get(
        f"{server.base}/tasks", params={"reminder": "due", "limit": 500}, headers=headers
    )
    assert answer.status_code == 200
    return [task["id"] for task in answer.json()]


def overdue(store: TaskStore, user: str, count: int) -> list[int]:
    """`count` tasks whose reminders came due a minute ago (oldest first)."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    made = []
    for i in range(count):
        fields = {
            "title": f"r{i}",
            "due_date": start + dt.timedelta(milliseconds=i),
            "remind_before": dt.timedelta(0),
        }
        made.append(store.create(user, task_defaults() | fields).task.id)
    return made


def test_streams_that_come_and_go_lose_no_reminder(
    server: Server, engine: Engine, client: TestClient
) -> None:
    user = f"comes-and-goes-{server.log.stem}"
    headers = bearer(make_token(user))
    made = overdue(TaskStore(engine, quota=1000), user, 150)
    received: list[int] = []
    # Each stream stays until the first reminder comes, then leaves, as a tab closed at once.
    for _ in range(6):
        reader = LeavingReader(f"{server.base}/tasks/events", headers)
        first: list[Event] = []
        with contextlib.suppress(queue.Empty, EOFError):
            while not first or first[-1].event != "reminder":
                first.append(reader.next(timeout=5))
        received += reminder_ids(first + reader.leave())
        reader.close()
    brief = len(received)
    # Then one stream stays: every reminder not yet received comes (claims its predecessors
    # left unconfirmed come back when released, or when their lease ends).
    with EventReader(f"{server.base}/tasks/events", headers) as stream:
        deadline = time.monotonic() + 6 * LEASE + 15
        while len(set(received)) < len(made) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                event = stream.next(timeout=1)
                if event.event == "reminder":
                    received.append(event.json()["id"])
    still_due = due_now(server, headers)
    print(
        f"made {len(made)}; received {brief} on the brief streams, {len(received) - brief} on "
        f"the last; still due {len(still_due)}"
    )
    assert len(received) == len(set(received)), "a reminder was received twice"
    assert set(received) <= set(made)
    assert len(received) + len(still_due) == len(made)
    assert sorted(received) == sorted(made)


def test_one_users_backlog_does_not_hold_back_another_users_reminder(
    server: Server, engine: Engine, client: TestClient
) -> None:
    store = TaskStore(engine, quota=1000)
    tag = server.log.stem
    crowd = [f"backlog-{tag}-{i}" for i in range(5)]
    backlog = {user: overdue(store, user, 150) for user in crowd}
    other = f"punctual-{tag}"
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    fields = {"title": "on time", "due_date": due, "remind_before": dt.timedelta(0)}
    punctual = store.create(other, task_defaults() | fields).task.id

    arrivals: list[tuple[float, str, int]] = []
    lock = threading.Lock()
    total = sum(len(ids) for ids in backlog.values()) + 1

    def follow(user: str) -> None:
        with EventReader(f"{server.base}/tasks/events", bearer(make_token(user))) as stream:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                with lock:
                    if len(arrivals) >= total:
                        return
                try:
                    event = stream.next(timeout=1)
                except queue.Empty:
                    continue
                if event.event == "reminder":
                    with lock:
                        arrivals.append((event.received, user, event.json()["id"]))

    threads = [threading.Thread(target=follow, args=(user,)) for user in [*crowd, other]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    arrivals.sort()
    order = [task_id for _, _, task_id in arrivals]
    assert punctual in order, "the other user's reminder never came"
    before = order.index(punctual)
    backlog_total = total - 1
    print(
        f"the other user's reminder came after {before} of the {backlog_total} backlog "
        f"reminders; {len(order)} reminders in all"
    )
    # It came while most of the backlog was still to be worked through: claimed in order of
    # remind_at across users, it came only after (nearly) all of it.
    assert before <= backlog_total // 2
    # And every reminder of the backlog came, each once.
    assert sorted(order) == sorted([punctual, *(i for ids in backlog.values() for i in ids)])
