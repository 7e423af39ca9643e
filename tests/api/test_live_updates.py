"""Live updates: event streams on real server processes sharing one database.

On SQLite the processes hear of each other's writes by polling; on PostgreSQL both by
LISTEN/NOTIFY and by polling (as behind Neon's pooled endpoint).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, update
from starlette.testclient import TestClient

from storage import TaskStore
from storage.models import TaskRow
from tests.conftest import SECRET, bearer, make_token
from tests.network import free_port, serving
from tests.prometheus import Samples, samples, value
from tests.replica import apply_changes
from tests.sse import Event, EventReader

ALICE = bearer(make_token("alice"))
BOB = bearer(make_token("bob"))
ON_POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))


def server_env(database_url: str, **settings: str) -> dict[str, str]:
    """A `todo-api serve` environment on `database_url`, limits raised past the tests' load,
    with none of the shell's bounds, Redis or Better Auth: only what `settings` add."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": SECRET,
        "JWT_ISSUER": "http://localhost:3000",
        "JWT_AUDIENCE": "http://localhost:3000",
        "RATE_LIMIT_PER_USER": "1000000",
        "RATE_LIMIT_PER_ADDRESS": "1000000",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    for name in (
        "REDIS_URL",
        "METRICS_ENABLED",
        "JWKS_URL",
        "BETTER_AUTH_URL",
        "STREAMS_PER_USER",
        "STREAMS_PER_PROCESS",
        "MAX_CONNECTIONS",
        "MAX_CONNECTIONS_PER_ADDRESS",
    ):
        env.pop(name, None)
    return env | settings


class Server:
    def __init__(self, base: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.base = base
        self.process = process
        self.log = log

    def stream(
        self, headers: dict[str, str] | None = None, path: str = "/tasks/events", **kwargs: Any
    ) -> EventReader:
        return EventReader(f"{self.base}{path}", headers, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", ALICE)
        return httpx.post(f"{self.base}{path}", **kwargs)

    def log_text(self) -> str:
        time.sleep(0.2)  # a request's line is written as its answer completes
        return self.log.read_text()


@contextlib.contextmanager
def started(env: dict[str, str], directory: Path, name: str) -> Iterator[Server]:
    log = directory / f"{name}.log"
    with (
        log.open("w") as out,
        serving(env, directory, out, subprocess.STDOUT) as (base, process),
    ):
        yield Server(base, process, log)


WAKEUPS = ["listen", "poll"] if ON_POSTGRES else ["poll"]


@contextlib.contextmanager
def two_servers(
    database_url: str, directory: Path, wakeups: str
) -> Iterator[tuple[Server, Server]]:
    """Two `todo-api serve` processes on the suite's database (migrated by `app_client`),
    hearing of each other's writes by `wakeups`."""
    env = server_env(database_url, STREAM_WAKEUPS=wakeups)
    with started(env, directory, "a") as a, started(env, directory, "b") as b:
        yield a, b


@pytest.fixture(scope="module", params=WAKEUPS)
def pair(
    request: pytest.FixtureRequest,
    database_url: str,
    app_client: TestClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, Server]]:
    """Their heartbeat is the default 15 s, longer than any test waits: events come by wakes."""
    with two_servers(database_url, tmp_path_factory.mktemp("live"), request.param) as servers:
        yield servers


@pytest.fixture
def servers(pair: tuple[Server, Server], client: TestClient) -> tuple[Server, Server]:
    """The pair, with the tables emptied after each test (by `client`)."""
    return pair


def create_some(server: Server, count: int, headers: dict[str, str] = ALICE) -> None:
    """`count` creates: each its own entry in the feed, however late it is read."""
    for i in range(count):
        answer = server.post("/tasks", json={"title": f"task {i}"}, headers=headers)
        assert answer.status_code == 201


def feed_from(
    server: Server, headers: dict[str, str] = ALICE, cursor: str | None = None
) -> list[Any]:
    """Every change of the feed after `cursor`, each with the cursor just after it."""
    params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
    entries = []
    while True:
        page = httpx.get(f"{server.base}/tasks/changes", params=params, headers=headers).json()
        if not page["changes"]:
            return entries
        entries.append((page["changes"][0], page["cursor"]))
        params["cursor"] = page["cursor"]


def as_entries(events: list[Event]) -> list[Any]:
    assert all(event.event == "change" for event in events)
    return [(event.json(), event.id) for event in events]


def test_a_stream_on_one_server_gets_every_write_made_on_the_other_in_order(
    servers: tuple[Server, Server],
) -> None:
    a, b = servers
    with b.stream(ALICE) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert stream.headers["cache-control"] == "no-store"
        create_some(a, 12)
        events = stream.take(12)
        assert stream.nothing_more(1.5)
    assert stream.retry == 2000
    # Exactly the feed, entry by entry: the same JSON, and the id the cursor just after it.
    assert as_entries(events) == feed_from(a)


def test_a_replica_kept_by_a_stream_ends_equal_to_the_server(
    servers: tuple[Server, Server],
) -> None:
    """Updates and deletes too, as fast as they come: a change read late is the task's latest
    state (as in the feed), so the replica passes through fewer states, never wrong ones."""
    a, b = servers
    replica: dict[int, Any] = {}
    with b.stream(ALICE) as stream:
        made: list[int] = []
        for i in range(30):
            if i % 3 == 2:
                assert (
                    httpx.delete(f"{a.base}/tasks/{made.pop(0)}", headers=ALICE).status_code == 204
                )
            elif i % 3 == 1:
                title = {"title": f"write {i}"}
                assert httpx.patch(
                    f"{a.base}/tasks/{made[-1]}", json=title, headers=ALICE
                ).is_success
            else:
                made.append(a.post("/tasks", json={"title": f"write {i}"}).json()["id"])
        final = feed_from(a)[-1][1]
        ids: list[str] = []
        while not ids or ids[-1] != final:
            event = stream.next()
            ids.append(event.id or "")
            apply_changes(replica, {"changes": [event.json()]})
        assert stream.nothing_more(1.0)
    positions = [json.loads(base64.urlsafe_b64decode(i + "=="))["after"] for i in ids]
    assert positions == sorted(set(positions))  # in commit order, none twice
    tasks = httpx.get(f"{a.base}/tasks", headers=ALICE).json()
    assert replica == {task["id"]: task for task in tasks}


def test_a_stream_sends_only_its_own_users_changes(servers: tuple[Server, Server]) -> None:
    a, b = servers
    with b.stream(ALICE) as alices, a.stream(BOB) as bobs:
        for _ in range(3):
            create_some(a, 3, BOB)
            create_some(b, 3, ALICE)
        got_alice, got_bob = alices.take(9), bobs.take(9)
        assert alices.nothing_more(1.5)
        assert bobs.nothing_more(0.1)
    assert as_entries(got_alice) == feed_from(a, ALICE)
    assert as_entries(got_bob) == feed_from(a, BOB)
    assert {event.json()["task"]["user_id"] for event in got_alice} == {"alice"}


def test_a_stream_resumed_from_its_last_id_on_another_server_loses_and_repeats_nothing(
    servers: tuple[Server, Server], database_url: str, tmp_path: Path
) -> None:
    a, _ = servers
    doomed_env = server_env(database_url)
    with started(doomed_env, tmp_path, "doomed") as doomed:
        stream = doomed.stream(ALICE)
        create_some(a, 6)
        first = stream.take(4)
        doomed.process.kill()  # mid-stream, no goodbye
        doomed.process.wait()
        with contextlib.suppress(EOFError):
            first += stream.take(2, timeout=1)
        stream.close()
    create_some(a, 6)
    with a.stream(ALICE | {"Last-Event-ID": first[-1].id or ""}) as resumed:
        rest = resumed.take(len(feed_from(a)) - len(first))
        assert resumed.nothing_more(1.5)
    assert as_entries(first + rest) == feed_from(a)


@pytest.mark.skipif(not ON_POSTGRES, reason="LISTEN needs PostgreSQL (TEST_DATABASE_URL)")
def test_a_process_that_cannot_listen_polls_instead(
    servers: tuple[Server, Server], database_url: str, tmp_path: Path
) -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    env = server_env(database_url, STREAM_WAKEUPS="listen", DATABASE_DIRECT_URL=nobody)
    a, _ = servers
    with started(env, tmp_path, "deaf") as deaf, deaf.stream(ALICE) as stream:
        create_some(a, 3)
        assert len(stream.take(3)) == 3
    assert '"listen_failed"' in deaf.log_text()


def test_a_server_shutting_down_ends_its_streams_and_stops_at_once(
    servers: tuple[Server, Server], database_url: str, tmp_path: Path
) -> None:
    with started(server_env(database_url), tmp_path, "stopping") as stopping:
        streams = [stopping.stream(ALICE) for _ in range(3)]
        assert [stream.status for stream in streams] == [200] * 3
        asked = time.monotonic()
        stopping.process.terminate()
        # uvicorn finishes its graceful shutdown, then ends by the signal it was sent.
        assert stopping.process.wait(timeout=10) == -signal.SIGTERM
        stopped = time.monotonic() - asked
        for stream in streams:
            # Each answer ended as an answer does (the last chunk), not by a broken connection.
            assert stream.ended.wait(5)
            assert stream.nothing_more(0.1)
            assert stream.broken is None
            stream.close()
        log = stopping.log_text()
    # Not the 30 s a request in flight may take: streams are told to end.
    assert stopped < 5
    assert '"level": "ERROR"' not in log
    assert "Finished server process" in log


def test_a_cursor_in_the_url_resumes_and_last_event_id_wins_over_it(
    servers: tuple[Server, Server],
) -> None:
    a, b = servers
    create_some(a, 4)
    entries = feed_from(a)
    path = f"/tasks/events?cursor={entries[0][1]}"
    with b.stream(ALICE, path) as from_cursor:
        assert as_entries(from_cursor.take(3)) == entries[1:]
        assert from_cursor.nothing_more(0.5)
    with b.stream(ALICE | {"Last-Event-ID": entries[2][1]}, path) as from_header:
        assert as_entries(from_header.take(1)) == entries[3:]
        assert from_header.nothing_more(0.5)


def test_a_cursor_past_retention_gets_a_reset_event_and_the_stream_ends(
    servers: tuple[Server, Server], engine: Engine
) -> None:
    a, b = servers
    kept = a.post("/tasks", json={"title": "kept"}).json()
    gone = a.post("/tasks", json={"title": "gone"}).json()
    old_cursor = feed_from(a)[0][1]
    httpx.delete(f"{a.base}/tasks/{gone['id']}", headers=ALICE)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    with engine.begin() as connection:
        connection.execute(
            update(TaskRow).where(TaskRow.id == gone["id"]).values(deleted_at=long_ago)
        )
    assert TaskStore(engine, quota=100).purge().tasks == 1
    with b.stream(ALICE | {"Last-Event-ID": old_cursor}) as stream:
        reset = stream.next()
        assert stream.ended.wait(5)
    assert reset.event == "reset"
    problem = reset.json()
    assert problem["status"] == 410
    assert "without a cursor" in problem["detail"]
    with b.stream(ALICE) as fresh:
        assert fresh.next().json() == {"op": "upsert", "task": kept}


def test_bad_cursors_are_refused_before_any_stream(servers: tuple[Server, Server]) -> None:
    a, _ = servers
    with a.stream(ALICE | {"Last-Event-ID": "not a cursor!"}) as malformed:
        assert malformed.status == 422
        assert malformed.json_body()["errors"][0]["parameter"] == "Last-Event-ID"
    with a.stream(ALICE | {"Last-Event-ID": "eyJ4Ijo1fQ"}) as foreign:
        assert foreign.status == 422
        assert foreign.headers["content-type"] == "application/problem+json"
        assert foreign.json_body()["errors"][0]["parameter"] == "Last-Event-ID"
    with a.stream(ALICE, "/tasks/events?cursor=eyJ4Ijo1fQ") as in_url:
        assert in_url.json_body()["errors"][0]["parameter"] == "cursor"
    with a.stream() as anonymous:
        assert anonymous.status == 401


def ticket(server: Server, headers: dict[str, str] = ALICE, path: str = "/tasks") -> str:
    answer = server.post(f"{path}/events/tickets", headers=headers)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert set(body) == {"ticket", "expires_at"}
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(seconds=55) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=60)
    value: str = body["ticket"]
    return value


def test_a_ticket_opens_one_stream_once_for_its_user_on_any_server(
    servers: tuple[Server, Server],
) -> None:
    a, b = servers
    value = ticket(a)
    with b.stream(path=f"/tasks/events?ticket={value}") as stream:
        assert stream.status == 200
        create_some(a, 1, BOB)
        create_some(a, 1, ALICE)
        assert stream.next().json()["task"]["user_id"] == "alice"
        assert stream.nothing_more(1.0)
    with a.stream(path=f"/tasks/events?ticket={value}") as again:
        assert again.status == 401
        assert "already used" in again.json_body()["detail"]
    # Bound to its user: another user's path is refused (and the ticket stays good, once).
    alices = ticket(a)
    with a.stream(path=f"/bob/tasks/events?ticket={alices}") as other_user:
        assert other_user.status == 403
    with b.stream(path=f"/tasks/events?ticket={alices}") as after_refusal:
        assert after_refusal.status == 200
    with a.stream(path=f"/alice/tasks/events?ticket={ticket(a, path='/alice/tasks')}") as own:
        assert own.status == 200
    with a.stream(path="/tasks/events?ticket=" + "x" * 43) as made_up:
        assert made_up.status == 401


def test_tickets_and_tokens_never_reach_the_log(servers: tuple[Server, Server]) -> None:
    a, b = servers
    values = [ticket(a) for _ in range(2)]
    with b.stream(path=f"/tasks/events?ticket={values[0]}") as stream:
        assert stream.status == 200
    with b.stream(path=f"/tasks/events?ticket={values[1]}") as used:
        assert used.status == 200
    with b.stream(path=f"/tasks/events?ticket={values[1]}") as refused:
        assert refused.status == 401
    token = ALICE["Authorization"].split()[1]
    routes = {}
    for server in (a, b):
        text = server.log_text()
        routes[server] = {json.loads(line).get("route") for line in text.splitlines()}
        for secret in [*values, token, token.split(".")[2]]:
            assert secret not in text
    # The requests were logged, by their routes alone.
    assert "/api/tasks/events/tickets" in routes[a]
    assert "/api/tasks/events" in routes[b]


@pytest.fixture(scope="module")
def tight(
    database_url: str, app_client: TestClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server with small bounds: 2 streams a user, 3 in all, 1 database connection."""
    env = server_env(
        database_url,
        STREAMS_PER_USER="2",
        STREAMS_PER_PROCESS="3",
        DB_POOL_SIZE="1",
        DB_MAX_OVERFLOW="1",
        DB_POOL_TIMEOUT="1",
        STREAM_TICKET_SECONDS="1",
        STREAM_SEND_TIMEOUT="1",
        STREAM_HEARTBEAT="0.5",
        METRICS_ENABLED="true",
    )
    with started(env, tmp_path_factory.mktemp("tight"), "tight") as server:
        yield server


def test_a_quiet_stream_sends_heartbeats(tight: Server, client: TestClient) -> None:
    with tight.stream(ALICE) as stream:
        time.sleep(1.3)  # STREAM_HEARTBEAT=0.5
        assert stream.nothing_more(0.1)
    assert len(stream.comments) >= 2
    assert set(stream.comments) == {"heartbeat"}


def test_streams_past_a_users_bound_are_429_and_past_the_process_bound_503(
    tight: Server, client: TestClient
) -> None:
    carol = bearer(make_token("carol"))
    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(tight.stream(ALICE)) for _ in range(2)]
        assert [s.status for s in opened] == [200, 200]
        with tight.stream(ALICE) as third:
            assert third.status == 429
            assert third.headers["content-type"] == "application/problem+json"
            assert "retry-after" in third.headers
        bobs = stack.enter_context(tight.stream(BOB))
        assert bobs.status == 200
        with tight.stream(carol) as past_process:
            assert past_process.status == 503
            assert "retry-after" in past_process.headers
        # Idle streams hold no admission place and no connection: with two of each, ordinary
        # requests pass alongside three streams.
        for _ in range(5):
            assert tight.post("/tasks", json={"title": "beside streams"}).status_code == 201
        # The refused streams took no place, and the old ones still get every change.
        for stream in opened:
            assert len(stream.take(5)) == 5
    time.sleep(0.3)  # the server notices the closed streams
    with tight.stream(carol) as later:
        assert later.status == 200


def test_a_ticket_expires(tight: Server, client: TestClient) -> None:
    answer = tight.post("/tasks/events/tickets")
    assert answer.status_code == 201
    time.sleep(1.2)  # STREAM_TICKET_SECONDS=1
    with tight.stream(path=f"/tasks/events?ticket={answer.json()['ticket']}") as stream:
        assert stream.status == 401


def test_a_stream_ends_when_its_token_expires(tight: Server, client: TestClient) -> None:
    # Accepted within the 30 seconds' leeway for clock skew, so it lapses in 2 seconds.
    lapsing = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=28)
    headers = bearer(make_token("alice", exp=lapsing))
    started_at = time.monotonic()
    with tight.stream(headers) as stream:
        assert stream.status == 200
        assert stream.ended.wait(10)
    assert 1.0 < time.monotonic() - started_at < 5.0
    # A ticket asked for with that token ends with it too.
    lapsing = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=28)
    value = tight.post("/tasks/events/tickets", headers=bearer(make_token("alice", exp=lapsing)))
    with tight.stream(path=f"/tasks/events?ticket={value.json()['ticket']}") as by_ticket:
        assert by_ticket.status == 200
        assert by_ticket.ended.wait(10)


def test_a_reader_that_falls_behind_is_dropped_and_resumes_by_its_last_id(
    tight: Server, client: TestClient
) -> None:
    """A reader that takes nothing: the server writes until the connection's buffers are full
    (the kernel's, a few MB on loopback, then uvicorn's 64 kB), and then gives up on it within
    STREAM_SEND_TIMEOUT=1 rather than holding more."""
    slow = tight.stream(ALICE, receive_buffer=4096, paused=True)
    assert slow.status == 200
    ids = [tight.post("/tasks", json={"title": f"big {i}"}).json()["id"] for i in range(4)]

    def rewrite(i: int) -> None:
        # About 4 kB an event, each write a new one.
        body = {"description": chr(0x1F600 + i % 64) * 1000}
        url = f"{tight.base}/tasks/{ids[i % 4]}"
        assert httpx.patch(url, json=body, headers=ALICE).status_code == 200

    with ThreadPoolExecutor(max_workers=4) as pool:
        for batch in range(0, 3000, 200):
            list(pool.map(rewrite, range(batch, batch + 200)))
            if '"stream_dropped"' in tight.log_text():
                break
        else:
            pytest.fail("the slow reader was never dropped")
    slow.resume()
    assert slow.ended.wait(10)  # what was buffered, then the end of the connection
    got: list[Event] = []
    with contextlib.suppress(EOFError):
        while True:
            got.append(slow.next(1))
    slow.close()
    assert got
    with tight.stream(ALICE | {"Last-Event-ID": got[-1].id or ""}) as resumed:
        rest = resumed.take(4)  # each task's latest state, as the feed keeps it
        assert resumed.nothing_more(0.5)
    replica: dict[int, Any] = {}
    for event in got + rest:
        apply_changes(replica, {"changes": [event.json()]})
    tasks = httpx.get(f"{tight.base}/tasks", headers=ALICE).json()
    assert replica == {task["id"]: task for task in tasks}
    dropped = samples(httpx.get(f"{tight.base}/metrics").text)
    assert value(dropped, "todo_api_streams_dropped_total") >= 1
    # Dropped by the server on purpose: one line saying so, and no error from uvicorn.
    log = tight.log_text()
    assert log.count('"stream_dropped"') == 1
    assert '"level": "ERROR"' not in log


def test_streams_are_counted_in_the_metrics(tight: Server, client: TestClient) -> None:
    def scrape() -> Samples:
        time.sleep(0.2)  # a stream's place is given back as its connection closes
        return samples(httpx.get(f"{tight.base}/metrics").text)

    before = scrape()
    with tight.stream(ALICE) as first, tight.stream(ALICE) as second:
        with tight.stream(ALICE) as refused:
            assert refused.status == 429
        create_some(tight, 3)
        assert len(first.take(3)) == len(second.take(3)) == 3
        during = scrape()
    after = scrape()
    assert value(during, "todo_api_streams_open") == value(before, "todo_api_streams_open") + 2
    assert value(after, "todo_api_streams_open") == value(before, "todo_api_streams_open")
    for name, labels, grown in [
        ("todo_api_stream_events_total", {"event": "change"}, 6),
        ("todo_api_streams_refused_total", {"bound": "user"}, 1),
        ("todo_api_streams_refused_total", {"bound": "process"}, 0),
    ]:
        assert value(after, name, **labels) - value(before, name, **labels) == grown, name
